import { modelFormat } from './files.ts';
import { loadKerasModel } from './keras/load.ts';
import type { LoadedModel } from './loaded-model.ts';
import { loadTfjsModel } from './tfjs-layers.ts';

/** Loads a model from any supported container into tfjs, ready to scan and to write back. */
export async function loadModel(files: ReadonlyMap<string, Uint8Array>, entry: string): Promise<LoadedModel> {
  const format = modelFormat(files, entry);
  return format === 'tfjs-layers' ? loadTfjsModel(files, entry) : loadKerasModel(files, entry, format);
}
