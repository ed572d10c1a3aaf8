import type * as tfl from '@tensorflow/tfjs-layers';

export type InputRangeSource = 'option' | 'rescaling-layer' | 'normalization-layer' | 'default';

const round = (x: number) => Math.round(x * 1e6) / 1e6;

/**
 * The input range the model expects, read from its first layer when the user gave none: many Keras models
 * take raw 0–255 pixels and scale them inside (Rescaling(1/255), or Normalization/BatchNorm adapted on raw
 * pixels). Synthesising in [0, 1] for such a model would search the wrong space, so the scan would miss.
 */
export function inferInputRange(model: tfl.LayersModel): { range: [number, number]; source: InputRangeSource } {
  const first = model.layers.find((l) => l.getClassName() !== 'InputLayer');
  if (first?.getClassName() === 'Rescaling') {
    const cfg = first.getConfig() as { scale?: number; offset?: number };
    const scale = Number(cfg.scale ?? 1);
    const offset = Number(cfg.offset ?? 0);
    if (scale > 0 && scale < 1) return { range: [0, round((offset < 0 ? 1 - offset : 1) / scale)], source: 'rescaling-layer' };
  }
  if (first?.getClassName() === 'BatchNormalization') {
    const mean = first.weights.find((w) => w.originalName.endsWith('moving_mean'));
    if (mean) {
      const values = Array.from(mean.read().dataSync() as Float32Array);
      const avg = values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
      if (avg > 2) return { range: [0, 255], source: 'normalization-layer' };
    }
  }
  return { range: [0, 1], source: 'default' };
}
