import type { ObjectStore } from './object-store.ts';
import { S3Store } from './s3.ts';
import { S3Client } from '@aws-sdk/client-s3';

/**
 * An S3 client from docs/service.md's variables (S3_ENDPOINT, S3_REGION, S3_FORCE_PATH_STYLE,
 * S3_REQUEST_TIMEOUT_MS, AWS credentials), shared by the Node server and the Lambda. Requests time out
 * and throw, so a stalled connection becomes a retry instead of a job that never ends.
 */
export function s3ClientFromEnv(env: Readonly<Record<string, string | undefined>>): S3Client {
  return new S3Client({
    region: env.S3_REGION ?? env.AWS_REGION ?? 'us-east-1',
    ...(env.S3_ENDPOINT ? { endpoint: env.S3_ENDPOINT } : {}),
    forcePathStyle: env.S3_FORCE_PATH_STYLE === 'true',
    maxAttempts: 3,
    requestHandler: { requestTimeout: Number(env.S3_REQUEST_TIMEOUT_MS ?? 30_000), connectionTimeout: 5_000, throwOnRequestTimeout: true },
    ...(env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? {
          credentials: {
            accessKeyId: env.AWS_ACCESS_KEY_ID,
            secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
            ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
          },
        }
      : {}),
  });
}

/** The bucket names a variable lists (separated by commas or spaces). */
export function bucketNames(value: unknown): string[] {
  return String(value ?? '')
    .split(/[\s,]+/)
    .filter(Boolean);
}

/** One S3Store per bucket, sharing one client built from the environment; no client when no bucket is named. */
export function s3Stores(env: Readonly<Record<string, unknown>>, buckets: readonly string[]): Map<string, ObjectStore> {
  if (buckets.length === 0) return new Map();
  const client = s3ClientFromEnv(env as Readonly<Record<string, string | undefined>>);
  return new Map(buckets.map((b) => [b, new S3Store(client, b)]));
}
