import { IO_LIMITS, shardPaths } from '../../core/model/tfjs-layers.ts';
import { KERAS_LIMITS } from '../../core/model/keras/load.ts';
import { sha256Hex } from '../../core/util/digest.ts';
import { utf8 } from '../bytes.ts';
import { NotReadyError } from '../errors.ts';
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

/** A job that can never succeed (the object is gone, too large): reported, not retried. */
export class PermanentJobError extends Error {
  override readonly name = 'PermanentJobError';
}

async function versionOf(entryEtag: string, otherEtags: string[]): Promise<string> {
  if (otherEtags.length === 0) return entryEtag;
  return `${entryEtag}-${(await sha256Hex(utf8(otherEtags.join('\n')))).slice(0, 12)}`;
}

function folderOf(key: string): string {
  return key.includes('/') ? key.slice(0, key.lastIndexOf('/') + 1) : '';
}

async function read(store: ObjectStore, key: string, limit: number, missing: () => Error): Promise<{ body: Uint8Array; etag: string }> {
  const head = await store.head(key);
  if (head === null) throw missing();
  if (head.size > limit) throw new PermanentJobError(`${key} is ${head.size} bytes, over the ${limit}-byte limit`);
  const got = await store.get(key);
  if (got === null) throw missing();
  return got;
}

/**
 * Reads the model an event named, with everything it needs: a model.json with every shard its manifest
 * names (a shard not there yet means the upload is still going: NotReadyError, retried), a Keras 3
 * folder's model.weights.h5 with its config.json, or a single .h5/.hdf5/.keras file. Sizes are checked by
 * HEAD before any byte is read.
 */
export async function readModelFiles(store: ObjectStore, key: string, notReadyDelaySeconds: number): Promise<ModelFiles> {
  const folder = folderOf(key);
  const name = key.slice(folder.length);
  const gone = () => new PermanentJobError(`${store.bucket}/${key} no longer exists`);
  if (name.toLowerCase() === 'model.json') {
    const json = await read(store, key, IO_LIMITS.modelJsonBytes, gone);
    const files = new Map<string, Uint8Array>([['model.json', json.body]]);
    const keys = [key];
    const etags: string[] = [];
    for (const rel of shardPaths('model.json', json.body, IO_LIMITS.shards)) {
      const shard = await read(store, folder + rel, IO_LIMITS.weightBytes, () => new NotReadyError(`weight shard ${folder + rel} is not uploaded yet`, notReadyDelaySeconds));
      files.set(rel, shard.body);
      keys.push(folder + rel);
      etags.push(shard.etag);
    }
    return { files, entry: 'model.json', version: await versionOf(json.etag, etags), keys };
  }
  if (name === 'model.weights.h5') {
    const weights = await read(store, key, KERAS_LIMITS.fileBytes, gone);
    const config = await read(store, `${folder}config.json`, KERAS_LIMITS.fileBytes, () => new NotReadyError(`${folder}config.json is not uploaded yet`, notReadyDelaySeconds));
    return {
      files: new Map([
        ['config.json', config.body],
        ['model.weights.h5', weights.body],
      ]),
      entry: 'config.json',
      version: await versionOf(weights.etag, [config.etag]),
      keys: [`${folder}config.json`, key],
    };
  }
  const file = await read(store, key, KERAS_LIMITS.fileBytes, gone);
  return { files: new Map([[name, file.body]]), entry: name, version: file.etag, keys: [key] };
}
