import { readFile, readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { KERAS_LIMITS } from '../core/model/keras/load.ts';
import { IO_LIMITS, shardPaths } from '../core/model/tfjs-layers.ts';

/** A model file over its size cap: refused before a byte of it is read. */
export class ModelTooLargeError extends Error {
  override readonly name = 'ModelTooLargeError';
}

async function readCapped(path: string, limit: number): Promise<Uint8Array> {
  const info = await stat(path);
  if (!info.isFile()) throw new Error(`${path} is not a file`);
  if (info.size > limit) throw new ModelTooLargeError(`${basename(path)} is ${info.size} bytes, over the ${limit}-byte limit`);
  return new Uint8Array(await readFile(path));
}

/** A Keras 3 model folder: config.json, metadata.json and model.weights.h5 (as pushed to the Hugging Face Hub). */
async function readKerasFolder(dir: string): Promise<{ files: Map<string, Uint8Array>; entry: string }> {
  const files = new Map<string, Uint8Array>();
  const names = await readdir(dir);
  for (const name of ['config.json', 'metadata.json', 'model.weights.h5']) {
    if (names.includes(name)) files.set(name, await readCapped(join(dir, name), KERAS_LIMITS.fileBytes));
  }
  return { files, entry: 'config.json' };
}

/**
 * Reads a model into the map the engine takes: model.json and the shards its manifest names (only
 * those inside its folder), a single Keras file (.h5/.hdf5/.keras), or a Keras 3 model folder.
 * Anything unreadable is left out so the engine reports precisely what is missing.
 */
export async function readModelFiles(modelPath: string): Promise<{ files: Map<string, Uint8Array>; entry: string }> {
  const info = await stat(modelPath);
  if (info.isDirectory()) {
    // A folder is a Keras 3 model (config.json + model.weights.h5) or a TensorFlow.js one (model.json).
    const names = await readdir(modelPath);
    if (!names.includes('config.json') && names.includes('model.json')) return readModelFiles(join(modelPath, 'model.json'));
    return readKerasFolder(modelPath);
  }
  const entry = basename(modelPath);
  const dir = dirname(modelPath);
  const files = new Map<string, Uint8Array>();
  if (!info.isFile()) throw new Error(`${modelPath} is not a file`);
  if (!entry.toLowerCase().endsWith('.json')) {
    files.set(entry, await readCapped(modelPath, KERAS_LIMITS.fileBytes));
    return { files, entry };
  }
  if (entry === 'config.json') {
    try {
      if ((await stat(join(dir, 'model.weights.h5'))).isFile()) return readKerasFolder(dir);
    } catch {
      // not a Keras folder: read as model.json
    }
  }
  const json = await readCapped(modelPath, IO_LIMITS.modelJsonBytes);
  files.set(entry, json);
  for (const rel of shardPaths(entry, json)) {
    try {
      const s = await stat(join(dir, rel));
      if (s.isFile() && s.size <= IO_LIMITS.weightBytes) files.set(rel, new Uint8Array(await readFile(join(dir, rel))));
    } catch {
      // Missing: the engine names it in the report.
    }
  }
  return { files, entry };
}
