// Values global setups hand to tests (vitest's provide/inject).
declare module 'vitest' {
  export interface ProvidedContext {
    /** moto's S3 endpoint for the workerd tests (test/workers/global-setup.ts). */
    s3Endpoint: string;
  }
}
export {};
