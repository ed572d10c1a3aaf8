import { sha256Hex } from '../../core/util/digest.ts';
import type { ObjectStore, PutOptions, StoredObject } from './object-store.ts';

/**
 * A bucket in memory, with the conditional writes the job protocol relies on: create-only fails when the
 * key exists, If-Match when the object changed. Each check and its write happen without an await between
 * them, so two concurrent writers in one process cannot both win, as on S3 and R2. ETags are content
 * digests, so equal bytes give equal ETags as S3's single-part MD5s do. For tests and embedding.
 */
export class MemoryStore implements ObjectStore {
  private readonly objects = new Map<string, StoredObject>();

  constructor(readonly bucket: string) {}

  async get(key: string): Promise<StoredObject | null> {
    const o = this.objects.get(key);
    return o === undefined ? null : { body: Uint8Array.from(o.body), etag: o.etag };
  }

  async head(key: string): Promise<{ etag: string; size: number } | null> {
    const o = this.objects.get(key);
    return o === undefined ? null : { etag: o.etag, size: o.body.length };
  }

  async put(key: string, body: Uint8Array | string, options: PutOptions = {}): Promise<boolean> {
    const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : Uint8Array.from(body);
    const etag = await sha256Hex(bytes);
    const current = this.objects.get(key);
    if (options.createOnly && current !== undefined) return false;
    if (options.ifMatch !== undefined && current?.etag !== options.ifMatch) return false;
    this.objects.set(key, { body: bytes, etag });
    return true;
  }

  async delete(key: string): Promise<void> {
    this.objects.delete(key);
  }

  async list(prefix: string): Promise<string[]> {
    return [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
  }

  /** Every key, for tests. */
  keys(): string[] {
    return [...this.objects.keys()].sort();
  }
}
