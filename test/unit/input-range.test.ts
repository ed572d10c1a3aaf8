import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { initWasmBackend } from '../../src/core/tfjs/backend.ts';
import { inferInputRange } from '../../src/core/model/input-range.ts';
import { nodeWasmPath } from '../../src/node/wasm-path.ts';

beforeAll(async () => {
  await initWasmBackend({ wasmPath: nodeWasmPath() });
});

const head = () => [
  tfl.layers.conv2d({ filters: 2, kernelSize: 3 }),
  tfl.layers.flatten(),
  tfl.layers.dense({ units: 3, activation: 'softmax' }),
];

describe('input range from the model', () => {
  it('reads 0–255 from a first Rescaling(1/255), and from Rescaling(1/127.5, -1)', () => {
    const a = tfl.sequential({ layers: [tfl.layers.rescaling({ scale: 1 / 255, inputShape: [8, 8, 1] }), ...head()] });
    expect(inferInputRange(a)).toEqual({ range: [0, 255], source: 'rescaling-layer' });
    const b = tfl.sequential({ layers: [tfl.layers.rescaling({ scale: 1 / 127.5, offset: -1, inputShape: [8, 8, 1] }), ...head()] });
    expect(inferInputRange(b)).toEqual({ range: [0, 255], source: 'rescaling-layer' });
  });

  it('reads 0–255 from a first normalisation adapted on raw pixels, and keeps [0, 1] otherwise', () => {
    const norm = (mean: number) => {
      const m = tfl.sequential({
        layers: [tfl.layers.batchNormalization({ inputShape: [8, 8, 1], center: false, scale: false }), ...head()],
      });
      m.layers[0]!.setWeights([tf.tensor1d([mean]), tf.tensor1d([60 * 60])]);
      return m;
    };
    expect(inferInputRange(norm(120))).toEqual({ range: [0, 255], source: 'normalization-layer' });
    expect(inferInputRange(norm(0.4)).source).toBe('default');
    expect(
      inferInputRange(
        tfl.sequential({ layers: [tfl.layers.conv2d({ filters: 2, kernelSize: 3, inputShape: [8, 8, 1] }), tfl.layers.flatten()] }),
      ),
    ).toEqual({ range: [0, 1], source: 'default' });
  });
});
