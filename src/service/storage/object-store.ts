import type { VerdictMark } from '../jobs/mark.ts';

/** An object as read back: its bytes and the ETag that names this version of it. */
export interface StoredObject {
  body: Uint8Array;
  etag: string;
}

export interface PutOptions {
  contentType?: string;
  /** Create-only (If-None-Match: *): false comes back when the key already exists, nothing is written. */
  createOnly?: boolean;
  /** Replace only this version (If-Match): false comes back when the object changed meanwhile. */
  ifMatch?: string;
}

/**
 * One bucket, as the job needs it. Adapters (S3, R2, a local folder) map their faults onto TransientError
 * (worth a retry) or let anything else through as a permanent failure.
 */
export interface ObjectStore {
  readonly bucket: string;
  get(key: string): Promise<StoredObject | null>;
  head(key: string): Promise<{ etag: string; size: number } | null>;
  /** Writes the object; false only when a condition in `options` failed. */
  put(key: string, body: Uint8Array | string, options?: PutOptions): Promise<boolean>;
  /** Removes an object of the service's own (a delivery record); never called on a user's object. */
  delete(key: string): Promise<void>;
  /** Keys under a prefix, all pages. */
  list(prefix: string): Promise<string[]>;
  /** S3 object tags; absent where the store has none (R2: the mark is verdict.json instead). */
  readonly tags?: {
    get(key: string): Promise<Record<string, string>>;
    put(key: string, tags: Record<string, string>): Promise<void>;
  };
  /** Tells a registry's users the verdict once, where tags do not exist (a Hub discussion). */
  announce?(key: string, mark: VerdictMark): Promise<void>;
}

/** Finds the store of a bucket; null for a bucket the service is not configured for. */
export type StoreResolver = (bucket: string) => ObjectStore | null;
