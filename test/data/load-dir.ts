import { initWasmBackend } from '../../src/core/tfjs/backend.ts';
import { loadModel } from '../../src/core/model/load.ts';
import { nodeWasmPath } from '../../src/node/wasm-path.ts';
import { readModelFiles } from '../../src/node/read-model.ts';
import type * as tfl from '@tensorflow/tfjs-layers';

/** Loads a model (model.json, .h5, .keras or a Keras folder) from disk through the engine's own readers (on wasm). */
export async function loadModelFromDisk(path: string): Promise<tfl.LayersModel> {
  await initWasmBackend({ wasmPath: nodeWasmPath() });
  const { files, entry } = await readModelFiles(path);
  return (await loadModel(files, entry)).model;
}
