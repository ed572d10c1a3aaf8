import { initWasmBackend } from '../../src/core/backend.ts';
import { loadTfjsModel } from '../../src/core/model-io.ts';
import { nodeWasmPath } from '../../src/node/wasm-path.ts';
import { readModelFiles } from '../../src/node/read-model.ts';
import type * as tfl from '@tensorflow/tfjs-layers';

/** Loads a tfjs model from disk through the engine's own reader (on wasm). */
export async function loadModelFromDisk(path: string): Promise<tfl.LayersModel> {
  await initWasmBackend({ wasmPath: nodeWasmPath() });
  const { files, entry } = await readModelFiles(path);
  return (await loadTfjsModel(files, entry)).model;
}
