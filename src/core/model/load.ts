import { ShapguardError } from '../errors.ts';
import { loadKerasModel } from './keras/load.ts';
import type { LoadedModel, ModelFormat } from './loaded-model.ts';
import { loadTfjsModel } from './tfjs-layers.ts';

const HDF5_MAGIC = [0x89, 0x48, 0x44, 0x46];
const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];

function startsWith(bytes: Uint8Array | undefined, magic: number[]): boolean {
  return bytes !== undefined && magic.every((b, i) => bytes[i] === b);
}

/**
 * Which container the entry is: by its name first (model.json, .h5/.hdf5, .keras, a Keras 3 folder's
 * config.json beside model.weights.h5), then by its first bytes, so a renamed file is still read right.
 */
export function modelFormat(files: ReadonlyMap<string, Uint8Array>, entry: string): ModelFormat {
  const lower = entry.toLowerCase();
  const bytes = files.get(entry);
  const dir = entry.includes('/') ? entry.slice(0, entry.lastIndexOf('/') + 1) : '';
  if (lower.endsWith('.h5') || lower.endsWith('.hdf5')) return 'keras-h5';
  if (lower.endsWith('.keras')) return 'keras-zip';
  if (lower.split('/').at(-1) === 'config.json' && files.has(`${dir}model.weights.h5`)) return 'keras-dir';
  if (lower.endsWith('.json')) return 'tfjs-layers';
  if (startsWith(bytes, HDF5_MAGIC)) return 'keras-h5';
  if (startsWith(bytes, ZIP_MAGIC)) return 'keras-zip';
  throw new ShapguardError('unsupported', `${entry}: unknown model format (expected model.json, .h5/.hdf5, .keras, or a Keras 3 folder)`);
}

/** Loads a model from any supported container into tfjs, ready to scan and to write back. */
export async function loadModel(files: ReadonlyMap<string, Uint8Array>, entry: string): Promise<LoadedModel> {
  const format = modelFormat(files, entry);
  return format === 'tfjs-layers' ? loadTfjsModel(files, entry) : loadKerasModel(files, entry, format);
}
