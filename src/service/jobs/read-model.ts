import { entryLimit, modelParts } from '../../core/model/files.ts';
import { IO_LIMITS } from '../../core/model/tfjs-layers.ts';
import { sha256Hex } from '../../core/util/digest.ts';
import { utf8 } from '../bytes.ts';
import { NotReadyError, PermanentJobError } from '../errors.ts';
import type { ObjectStore } from '../storage/object-store.ts';

/** A model's files as the engine takes them, named relative to the model's folder. */
export interface ModelFiles {
  files: Map<string, Uint8Array>;
  entry: string;
  /**
   * Names this version of the model; outputs are keyed by it. The ETag of a single file; for a model.json
   * or a Keras folder, the entry's ETag plus a digest of the other parts' ETags, so replacing a shard
   * alone makes a new version and a new scan.
   */
  version: string;
  /** Keys read, for the report's provenance and for shard events. */
  keys: string[];
}

async function versionOf(entryEtag: string, otherEtags: string[]): Promise<string> {
  if (otherEtags.length === 0) return entryEtag;
  return `${entryEtag}-${(await sha256Hex(utf8(otherEtags.join('\n')))).slice(0, 12)}`;
}

function folderOf(key: string): string {
  return key.includes('/') ? key.slice(0, key.lastIndexOf('/') + 1) : '';
}

/** An object's bytes and ETag after a HEAD has checked its size; null when it is not there. */
async function readCapped(store: ObjectStore, key: string, limit: number): Promise<{ body: Uint8Array; etag: string } | null> {
  const head = await store.head(key);
  if (head === null) return null;
  if (head.size > limit) throw new PermanentJobError(`${key} is ${head.size} bytes, over the ${limit}-byte limit`);
  return store.get(key);
}

/**
 * Reads the model an event named with the parts core/model/files.ts says it has: a model.json with every
 * shard its manifest names, a Keras 3 folder's model.weights.h5 with its config.json (and metadata.json
 * when there), or a single .h5/.hdf5/.keras file. A required part not there yet means the upload is still
 * going (NotReadyError, retried). Sizes are checked by HEAD before any byte is read.
 */
export async function readModelFiles(store: ObjectStore, key: string, notReadyDelaySeconds: number): Promise<ModelFiles> {
  const folder = folderOf(key);
  const name = key.slice(folder.length);
  const entry = await readCapped(store, key, entryLimit(name));
  if (entry === null) throw new PermanentJobError(`${store.bucket}/${key} no longer exists`);
  const parts = modelParts(name, entry.body, IO_LIMITS.shards);
  const files = new Map<string, Uint8Array>([[name, entry.body]]);
  const keys = [key];
  const etags: string[] = [];
  for (const [part, required] of [...parts.required.map((p) => [p, true] as const), ...parts.optional.map((p) => [p, false] as const)]) {
    const got = await readCapped(store, folder + part.name, part.limit);
    if (got === null) {
      if (required) throw new NotReadyError(`${folder + part.name} is not uploaded yet`, notReadyDelaySeconds);
      continue;
    }
    files.set(part.name, got.body);
    keys.push(folder + part.name);
    etags.push(got.etag);
  }
  return { files, entry: parts.entry, version: await versionOf(entry.etag, etags), keys };
}
