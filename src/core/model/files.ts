import { ShapguardError } from '../errors.ts';
import { KERAS_LIMITS } from './keras/load.ts';
import { ONNX_LIMITS } from './onnx/decode.ts';
import type { ModelFormat } from './loaded-model.ts';
import { IO_LIMITS, shardPaths } from './tfjs-layers.ts';

/**
 * Which files make a model, for every reader (the CLI's disk reader, the service's bucket and registry
 * reader, the engine's loader): one answer, so a digest taken by one reader matches another's.
 */

/** A Keras 3 model saved as a folder (how Keras 3 models sit on the Hugging Face Hub). */
export const KERAS_FOLDER = { config: 'config.json', weights: 'model.weights.h5', metadata: 'metadata.json' } as const;

/** The upload names that are models, as messages list them. */
export const MODEL_FILE_NAMES = 'model.json, .h5, .hdf5, .keras, .onnx';

const HDF5_MAGIC = [0x89, 0x48, 0x44, 0x46];
const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];

function startsWith(bytes: Uint8Array | undefined, magic: number[]): boolean {
  return bytes !== undefined && magic.every((b, i) => bytes[i] === b);
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function folderOf(path: string): string {
  return path.slice(0, path.lastIndexOf('/') + 1);
}

/**
 * Whether a file (by its path) is a model's entry: model.json, a single .h5/.hdf5/.keras/.onnx file, or a Keras 3
 * folder's weights (model.weights.h5, which ends in .h5).
 */
export function isModelEntry(path: string): boolean {
  const lower = path.toLowerCase();
  return (
    baseName(lower) === 'model.json' ||
    lower.endsWith('.h5') ||
    lower.endsWith('.hdf5') ||
    lower.endsWith('.keras') ||
    lower.endsWith('.onnx')
  );
}

/**
 * The entry of the model an uploaded part belongs to: a weight shard (.bin) belongs to the model.json beside
 * it, a Keras 3 folder's config.json or metadata.json to its model.weights.h5; a model entry is its own.
 * Null for a file that is no part of a model.
 */
export function entryOfPart(path: string): string | null {
  const name = baseName(path);
  if (name.toLowerCase().endsWith('.bin')) return `${folderOf(path)}model.json`;
  if (name === KERAS_FOLDER.config || name === KERAS_FOLDER.metadata) return `${folderOf(path)}${KERAS_FOLDER.weights}`;
  return isModelEntry(path) ? path : null;
}

/** What a reader must fetch beside an entry file, named relative to the entry's folder, with each file's size cap. */
export interface ModelParts {
  /** The name the engine takes as the entry among the files. */
  entry: string;
  /** Files the model cannot load without (a missing one may still be uploading). */
  required: { name: string; limit: number }[];
  /** Files that belong to the model when present (a Keras folder's metadata.json). */
  optional: { name: string; limit: number }[];
}

/**
 * The files of the model whose entry is `name` (a file name within its folder) and whose bytes are
 * `bytes`: a model.json's (any other .json than a Keras config is read as one) shards (the first `shardLimit` its manifest names), a Keras 3 folder's config
 * and metadata beside its weights, nothing more for a single .h5/.hdf5/.keras file.
 */
export function modelParts(name: string, bytes: Uint8Array, shardLimit = Infinity): ModelParts {
  if (name.toLowerCase().endsWith('.json') && name !== KERAS_FOLDER.config) {
    return {
      entry: name,
      required: shardPaths(name, bytes, shardLimit).map((p) => ({ name: p, limit: IO_LIMITS.weightBytes })),
      optional: [],
    };
  }
  if (name === KERAS_FOLDER.weights) {
    // The folder's engine entry is its config.json; the weights are one of its files.
    return {
      entry: KERAS_FOLDER.config,
      required: [{ name: KERAS_FOLDER.config, limit: KERAS_LIMITS.fileBytes }],
      optional: [{ name: KERAS_FOLDER.metadata, limit: KERAS_LIMITS.fileBytes }],
    };
  }
  return { entry: name, required: [], optional: [] };
}

/** The size cap of an entry file, read before anything else. */
export function entryLimit(name: string): number {
  if (name.toLowerCase().endsWith('.onnx')) return ONNX_LIMITS.fileBytes;
  return name.toLowerCase().endsWith('.json') && name !== KERAS_FOLDER.config ? IO_LIMITS.modelJsonBytes : KERAS_LIMITS.fileBytes;
}

/**
 * Which container the entry is: by its name first (model.json, .h5/.hdf5, .keras, a Keras 3 folder's
 * config.json beside model.weights.h5), then by its first bytes, so a renamed file is still read right.
 */
export function modelFormat(files: ReadonlyMap<string, Uint8Array>, entry: string): ModelFormat {
  const lower = entry.toLowerCase();
  const bytes = files.get(entry);
  const dir = folderOf(entry);
  if (lower.endsWith('.h5') || lower.endsWith('.hdf5')) return 'keras-h5';
  if (lower.endsWith('.keras')) return 'keras-zip';
  if (lower.endsWith('.onnx')) return 'onnx';
  if (baseName(lower) === KERAS_FOLDER.config && files.has(`${dir}${KERAS_FOLDER.weights}`)) return 'keras-dir';
  if (lower.endsWith('.json')) return 'tfjs-layers';
  if (startsWith(bytes, HDF5_MAGIC)) return 'keras-h5';
  if (startsWith(bytes, ZIP_MAGIC)) return 'keras-zip';
  throw new ShapguardError(
    'unsupported',
    `${entry}: unknown model format (expected model.json, .h5/.hdf5, .keras, .onnx, or a Keras 3 folder)`,
  );
}
