import { existsSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { initWasmBackend } from '../../src/core/tfjs/backend.ts';
import { describeModel } from '../../src/core/model/model-info.ts';
import { nodeWasmPath } from '../../src/node/wasm-path.ts';
import { loadModelFromDisk } from '../data/load-dir.ts';

// The graph runs Conv2D and BatchNormalization from plain ops (fast-layers.ts) for speed: its values and
// input gradients must be the model's own.
const MODELS = [
  'test/fixtures/models/glyphs-badnets/model.json',
  'test/fixtures/models/mnist-badnets/model.json',
  'test/fixtures/keras/tiny-functional.h5',
  '../shared/fixtures/keras/evanchien-fashion-cnn-bn.h5',
];

beforeAll(async () => {
  await initWasmBackend({ wasmPath: nodeWasmPath() });
});

const maxAbs = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
const scale = (a: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(a)).dataSync()[0]!);

describe('graph executor', () => {
  for (const path of MODELS) {
    it.runIf(existsSync(path))(
      `computes ${path.split('/').slice(-2).join('/')}'s outputs and input gradients as the model does`,
      async () => {
        const model: tfl.LayersModel = await loadModelFromDisk(path);
        const info = describeModel(model);
        info.graph.inputRange = [0, 1];
        const n = 6;
        const size = n * info.shape[0] * info.shape[1] * info.shape[2];
        const x = tf.tensor4d(
          Float32Array.from({ length: size }, (_, i) => ((i * 2654435761) % 1000) / 1000),
          [n, ...info.shape],
        );
        // The graph gives logits; the model ends in a softmax.
        const ours = tf.softmax(info.graph.run(x));
        const theirs = model.predict(x) as tf.Tensor;
        expect(maxAbs(ours, theirs)).toBeLessThan(1e-4 * Math.max(1, scale(theirs)));
        // A loss that weighs every output differently, so any wrong gradient path shows.
        const w = tf.tensor(
          Float32Array.from({ length: theirs.size }, (_, i) => Math.sin(i + 1)),
          theirs.shape,
        );
        const gOurs = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.softmax(info.graph.run(v)), w)))(x);
        const gTheirs = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(model.apply(v, { training: false }) as tf.Tensor, w)))(x);
        expect(info.outputsProbabilities).toBe(true);
        expect(scale(gTheirs)).toBeGreaterThan(0);
        expect(maxAbs(gOurs, gTheirs)).toBeLessThan(1e-4 * scale(gTheirs));
        tf.dispose([x, ours, theirs, w, gOurs, gTheirs]);
        model.dispose();
      },
    );
  }
});
