import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initWasmBackend } from '../../src/core/tfjs/backend.ts';
import { TailEvaluator } from '../../src/core/stages/shapley/backdoor-game.ts';
import { describeModel, playerLayers, probs } from '../../src/core/model/model-info.ts';
import { loadTfjsModel, writeTfjsModel } from '../../src/core/model/tfjs-layers.ts';
import { PlayerSet, playerKey } from '../../src/core/stages/players.ts';
import { prunedWeights } from '../../src/core/model/prune-weights.ts';
import { nodeWasmPath } from '../../src/node/wasm-path.ts';
import { readDir, writeTinyModel } from '../helpers/tiny-model.ts';

// Estimation masks players; repair zeroes weights. The two must compute the same model, for channel
// players and for position players (a Flatten-fed Dense layer's inputs, one feature-map position each).
let files: Map<string, Uint8Array>;
beforeAll(async () => {
  await initWasmBackend({ wasmPath: nodeWasmPath() });
  files = readDir(await writeTinyModel());
});

describe('players', () => {
  it('by default are the last conv channels and the positions a Flatten feeds into the Dense layer', async () => {
    const info = describeModel((await loadTfjsModel(files)).model);
    const layers = playerLayers(info);
    expect(layers).toEqual([
      { layer: 'c2', kind: 'channels' },
      { layer: 'out', kind: 'positions' },
    ]);
    const set = new PlayerSet(info, layers);
    expect(set.size).toBe(6 + 16);
    expect(set.grids.get('out')).toEqual([4, 4, 6]);
    expect(playerKey(set.players[6 + 7]!)).toBe('out@1,3');
    expect(() => new PlayerSet(info, [{ layer: 'c2', kind: 'positions' }])).toThrow(/not a Dense layer fed by a Flatten/);
  });

  it.each([
    ['positions', [{ layer: 'out', kind: 'positions' as const }], [0, 11, 15]],
    [
      'channels and positions',
      [
        { layer: 'c2', kind: 'channels' as const },
        { layer: 'out', kind: 'positions' as const },
      ],
      [2, 6, 6 + 9],
    ],
  ])('masking %s in a tail pass gives the predictions of the model with them pruned', async (_name, layers, off) => {
    const loaded = await loadTfjsModel(files);
    const info = describeModel(loaded.model);
    const set = new PlayerSet(info, layers);
    const images = Float32Array.from({ length: 5 * 64 }, (_, i) => ((i * 7919) % 97) / 97);
    const tail = new TailEvaluator(info, set, images);
    const coalition = new Uint8Array(set.size).fill(1);
    for (const k of off) coalition[k] = 0;
    const masked = tail.probabilities([coalition]);
    const full = tail.probabilities([new Uint8Array(set.size).fill(1)]);
    const changed = prunedWeights(
      loaded,
      loaded.model,
      off.map((k) => set.players[k]!),
      set.grids,
    );
    const pruned = (await loadTfjsModel(writeTfjsModel(loaded, changed))).model;
    const x = tf.tensor4d(images, [5, 8, 8, 1]);
    // The scan's probabilities: the pruned model's own logits, normalised the scan's way.
    const expected = probs(describeModel(pruned).graph.run(x));
    // And the model's own predictions agree with them.
    expect(Array.from(tf.argMax(pruned.predict(x) as tf.Tensor, 1).dataSync())).toEqual(Array.from(tf.argMax(masked, 1).dataSync()));
    const diff = (a: tf.Tensor, b: tf.Tensor) => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!;
    expect(diff(masked, expected)).toBeLessThan(1e-5);
    // The pruned players matter here, or the comparison would prove nothing.
    expect(diff(full, expected)).toBeGreaterThan(1e-4);
    // A pruned position zeroes its channels' rows of the Dense kernel and nothing else.
    const kernel = changed.get('out/kernel')!;
    const original = loaded.model.getLayer('out').getWeights()[0]!.dataSync();
    const offPositions = off
      .map((k) => set.players[k]!)
      .filter((p) => p.position)
      .map((p) => p.position![0] * 4 + p.position![1]);
    for (let row = 0; row < 96; row++) {
      for (let u = 0; u < 3; u++) expect(kernel[row * 3 + u]).toBe(offPositions.includes(Math.floor(row / 6)) ? 0 : original[row * 3 + u]);
    }
    tail.dispose();
    tf.dispose([masked, full, expected, x]);
  });

  it('the first-order estimate that orders the first greedy walks is the gradient of the game in the players', async () => {
    const info = describeModel((await loadTfjsModel(files)).model);
    const set = new PlayerSet(info, playerLayers(info));
    const images = Float32Array.from({ length: 5 * 64 }, (_, i) => ((i * 7919) % 97) / 97);
    const tail = new TailEvaluator(info, set, images);
    const coalition = new Uint8Array(set.size).fill(1);
    coalition[3] = 0;
    coalition[6 + 5] = 0;
    const target = 1;
    // The differentiable masks compute the same game as the coalition masks at a 0/1 point.
    const exact = tail.probabilities([coalition]);
    const meanTarget = tf.mean(tf.slice(exact, [0, target], [-1, 1])).dataSync()[0]!;
    expect(tail.valueAt(Float32Array.from(coalition), target)).toBeCloseTo(meanTarget, 6);
    const grad = tail.firstOrder(coalition, target);
    const h = 1e-3;
    let largest = 0;
    for (let i = 0; i < set.size; i++) {
      const at = (d: number) =>
        tail.valueAt(
          Float32Array.from(coalition, (c, j) => (j === i ? c + d : c)),
          target,
        );
      const numeric = coalition[i] ? (at(h) - at(-h)) / (2 * h) : 0;
      expect(Math.abs(grad[i]! - numeric)).toBeLessThan(2e-3 + 0.01 * Math.abs(numeric));
      largest = Math.max(largest, Math.abs(numeric));
    }
    // Removed players get no estimate; the others do, or the comparison would prove nothing.
    expect(grad[3]).toBe(0);
    expect(largest).toBeGreaterThan(1e-3);
    tail.dispose();
    exact.dispose();
  });
});
