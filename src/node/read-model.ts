import { readFile, readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { entryLimit, KERAS_FOLDER, modelParts } from '../core/model/files.ts';

/** A model file over its size cap: refused before a byte of it is read. */
export class ModelTooLargeError extends Error {
  override readonly name = 'ModelTooLargeError';
}

/** A model path that names no model: a folder without one, or something that is not a file or folder. */
export class ModelPathError extends Error {
  override readonly name = 'ModelPathError';
}

const FS_WORDS: Record<string, string> = {
  ENOENT: 'no such file or folder',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EISDIR: 'a folder, not a file',
  ELOOP: 'too many symbolic links',
};

/** A file-system error in words, with its code (never a stack). */
export function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code === undefined ? (err as Error).message : `${FS_WORDS[code] ?? 'file-system error'} (${code})`;
}

async function readCapped(path: string, limit: number): Promise<Uint8Array> {
  const info = await stat(path);
  if (!info.isFile()) throw new Error(`${path} is not a file`);
  if (info.size > limit) throw new ModelTooLargeError(`${basename(path)} is ${info.size} bytes, over the ${limit}-byte limit`);
  return new Uint8Array(await readFile(path));
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/**
 * Reads a model from disk into the map the engine takes, as core/model/files.ts says which files make it:
 * model.json and the shards its manifest names (only those inside its folder), a single Keras file
 * (.h5/.hdf5/.keras), or a Keras 3 folder (given as the folder or its config.json). Parts that are not
 * there are left out, so the engine reports precisely what is missing.
 */
export async function readModelFiles(modelPath: string): Promise<{ files: Map<string, Uint8Array>; entry: string }> {
  const info = await stat(modelPath);
  if (info.isDirectory()) {
    // A folder is a Keras 3 model (config.json + model.weights.h5) or a TensorFlow.js one (model.json).
    const names = await readdir(modelPath);
    if (!names.includes(KERAS_FOLDER.config) && names.includes('model.json')) return readModelFiles(join(modelPath, 'model.json'));
    if (!names.includes(KERAS_FOLDER.config) && !names.includes(KERAS_FOLDER.weights))
      throw new ModelPathError(
        `${modelPath} holds no model: neither model.json (TensorFlow.js) nor ${KERAS_FOLDER.config} and ${KERAS_FOLDER.weights} (Keras 3)`,
      );
    return readKerasFolder(modelPath);
  }
  if (!info.isFile()) throw new ModelPathError(`${modelPath} is not a file or a folder`);
  const name = basename(modelPath);
  const dir = dirname(modelPath);
  if (name === KERAS_FOLDER.config && (await isFile(join(dir, KERAS_FOLDER.weights)))) return readKerasFolder(dir);
  const bytes = await readCapped(modelPath, entryLimit(name));
  const files = new Map<string, Uint8Array>([[name, bytes]]);
  const parts = modelParts(name, bytes);
  for (const part of [...parts.required, ...parts.optional]) {
    if (await isFile(join(dir, part.name))) files.set(part.name, await readCapped(join(dir, part.name), part.limit));
  }
  return { files, entry: parts.entry };
}

/** A Keras 3 folder: its config.json, metadata.json and model.weights.h5, whichever are there. */
async function readKerasFolder(dir: string): Promise<{ files: Map<string, Uint8Array>; entry: string }> {
  const files = new Map<string, Uint8Array>();
  const parts = modelParts(KERAS_FOLDER.weights, new Uint8Array(0));
  for (const part of [...parts.required, ...parts.optional, { name: KERAS_FOLDER.weights, limit: entryLimit(KERAS_FOLDER.weights) }]) {
    if (await isFile(join(dir, part.name))) files.set(part.name, await readCapped(join(dir, part.name), part.limit));
  }
  return { files, entry: parts.entry };
}
