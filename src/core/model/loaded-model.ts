import type * as tfl from '@tensorflow/tfjs-layers';

/** The container a model came in; a repaired model is written back in the same one. */
export type ModelFormat = 'tfjs-layers' | 'keras-h5' | 'keras-zip' | 'keras-dir' | 'onnx';

/** A weight a repair may change: its tfjs variable name (layer/kernel) and shape. */
export interface WritableWeight {
  name: string;
  shape: number[];
}

/** A model built for tfjs together with what is needed to write it back in its own format. */
export interface LoadedModel {
  model: tfl.LayersModel;
  format: ModelFormat;
  /** The entry file's path among `files` (model.json, x.h5, x.keras, x.onnx, or config.json of a folder). */
  entry: string;
  files: ReadonlyMap<string, Uint8Array>;
  weights: WritableWeight[];
  /**
   * The model's files with new values for some weights, every other byte as it was. Throws an
   * "unsupported" ShapguardError when the format stores those weights in a way that cannot be patched.
   */
  write(changed: ReadonlyMap<string, Float32Array>): Promise<Map<string, Uint8Array>>;
}
