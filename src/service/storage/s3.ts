import {
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  PutObjectTaggingCommand,
  S3ServiceException,
  type S3Client,
} from '@aws-sdk/client-s3';
import { TransientError } from '../errors.ts';
import type { ObjectStore, PutOptions, StoredObject } from './object-store.ts';

function status(err: unknown): number | undefined {
  return err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
}

/** S3 faults worth a retry: throttling, 5xx, and anything that never got an HTTP answer (reset, timeout). */
function rethrow(err: unknown, what: string): never {
  const code = status(err);
  if (code === undefined || code >= 500 || code === 429 || code === 408) {
    throw new TransientError(`S3 ${what} failed: ${(err as Error).message}`, { cause: err });
  }
  throw err;
}

const unquote = (etag: string | undefined) => (etag ?? '').replace(/^"(.*)"$/, '$1');

/**
 * One S3 bucket through @aws-sdk/client-s3 (AWS, MinIO, any S3-protocol server; also in workerd with the
 * xml-builder alias). Conditional writes use If-None-Match / If-Match, which S3 honours since 2024.
 */
export class S3Store implements ObjectStore {
  constructor(
    private readonly client: S3Client,
    readonly bucket: string,
  ) {}

  async get(key: string): Promise<StoredObject | null> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if (!out.Body) return null;
      return { body: await out.Body.transformToByteArray(), etag: unquote(out.ETag) };
    } catch (err) {
      if (status(err) === 404) return null;
      rethrow(err, `GET ${key}`);
    }
  }

  async head(key: string): Promise<{ etag: string; size: number } | null> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { etag: unquote(out.ETag), size: out.ContentLength ?? 0 };
    } catch (err) {
      if (status(err) === 404) return null;
      rethrow(err, `HEAD ${key}`);
    }
  }

  async put(key: string, body: Uint8Array | string, options: PutOptions = {}): Promise<boolean> {
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentType: options.contentType ?? 'application/octet-stream',
          ...(options.createOnly ? { IfNoneMatch: '*' } : {}),
          ...(options.ifMatch !== undefined ? { IfMatch: `"${options.ifMatch}"` } : {}),
        }),
      );
      return true;
    } catch (err) {
      // 412: the condition failed. 409 (ConditionalRequestConflict) is a concurrent write: the loser lost.
      if (status(err) === 412 || (status(err) === 409 && (options.createOnly || options.ifMatch !== undefined))) return false;
      rethrow(err, `PUT ${key}`);
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      rethrow(err, `DELETE ${key}`);
    }
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      try {
        const out = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
        for (const o of out.Contents ?? []) if (o.Key !== undefined) keys.push(o.Key);
        token = out.IsTruncated ? out.NextContinuationToken : undefined;
      } catch (err) {
        rethrow(err, `LIST ${prefix}`);
      }
    } while (token !== undefined);
    return keys;
  }

  readonly tags = {
    get: async (key: string): Promise<Record<string, string>> => {
      try {
        const out = await this.client.send(new GetObjectTaggingCommand({ Bucket: this.bucket, Key: key }));
        return Object.fromEntries((out.TagSet ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
      } catch (err) {
        rethrow(err, `GET tags of ${key}`);
      }
    },
    put: async (key: string, tags: Record<string, string>): Promise<void> => {
      try {
        await this.client.send(
          new PutObjectTaggingCommand({
            Bucket: this.bucket,
            Key: key,
            Tagging: { TagSet: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) },
          }),
        );
      } catch (err) {
        rethrow(err, `PUT tags of ${key}`);
      }
    },
  };
}
