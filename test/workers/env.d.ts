import type { Env as WorkerEnv } from '../../src/cloudflare/bindings.ts';

declare global {
  namespace Cloudflare {
    interface Env extends WorkerEnv {
      FIXTURE_MODEL_JSON: string;
      FIXTURE_SHARD_B64: string;
      FIXTURE_SAMPLE_JSON: string;
      FIXTURE_ONNX_B64: string;
      FIXTURE_ONNX_EXPECTED: string;
    }
  }
}
