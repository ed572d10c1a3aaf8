import { modelFormat } from './files.ts';
import { loadKerasModel } from './keras/load.ts';
import type { LoadedModel } from './loaded-model.ts';
import { loadOnnxModel } from './onnx/load.ts';
import { loadTfjsModel } from './tfjs-layers.ts';

/** Loads a model from any supported container into tfjs, ready to scan and to write back. */
export async function loadModel(files: ReadonlyMap<string, Uint8Array>, entry: string): Promise<LoadedModel> {
  const format = modelFormat(files, entry);
  if (format === 'tfjs-layers') return loadTfjsModel(files, entry);
  if (format === 'onnx') return loadOnnxModel(files, entry);
  return loadKerasModel(files, entry, format);
}
