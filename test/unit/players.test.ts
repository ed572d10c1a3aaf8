import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initWasmBackend } from '../../src/core/tfjs/backend.ts';
import { BackdoorGame, SubGame, TailEvaluator } from '../../src/core/stages/shapley/backdoor-game.ts';
import { describeModel, playerLayers, probs } from '../../src/core/model/model-info.ts';
import { loadTfjsModel, writeTfjsModel } from '../../src/core/model/tfjs-layers.ts';
import { PlayerSet, playerKey } from '../../src/core/stages/players.ts';
import { prunedWeights } from '../../src/core/model/prune-weights.ts';
import { nodeWasmPath } from '../../src/node/wasm-path.ts';
import { readDir, writeTinyModel } from '../helpers/tiny-model.ts';
import { prunedByKeys } from '../../bench/pruned-model.ts';

// Estimation masks players; repair zeroes weights. The two must compute the same model, for channel
// players and for position players (a Flatten-fed Dense layer's inputs, one feature-map position each).
let files: Map<string, Uint8Array>;
beforeAll(async () => {
  await initWasmBackend({ wasmPath: nodeWasmPath() });
  files = readDir(await writeTinyModel());
});

/**
 * The tiny model's probabilities with players `off` masked in a tail pass, and the model with them pruned
 * (its weights changed, written and read back) with its own probabilities, normalised the scan's way.
 */
async function maskedAndPruned(loaded: Awaited<ReturnType<typeof loadTfjsModel>>, set: PlayerSet, off: number[]) {
  const info = describeModel(loaded.model);
  const images = Float32Array.from({ length: 5 * 64 }, (_, i) => ((i * 7919) % 97) / 97);
  const tail = new TailEvaluator(info, set, images);
  const coalition = new Uint8Array(set.size).fill(1);
  for (const k of off) coalition[k] = 0;
  const masked = tail.probabilities([coalition]);
  const changed = prunedWeights(
    loaded,
    loaded.model,
    off.map((k) => set.players[k]!),
    set.grids,
  );
  const pruned = (await loadTfjsModel(writeTfjsModel(loaded, changed))).model;
  const x = tf.tensor4d(images, [5, 8, 8, 1]);
  return { tail, masked, changed, pruned, x, expected: probs(describeModel(pruned).graph.run(x)) };
}

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
    const { tail, masked, changed, pruned, x, expected } = await maskedAndPruned(loaded, set, off);
    const full = tail.probabilities([new Uint8Array(set.size).fill(1)]);
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

  it('split into cells, keeps every index, counts a cell as its share of the position, and names it', async () => {
    const info = describeModel((await loadTfjsModel(files)).model);
    const base = new PlayerSet(info, playerLayers(info));
    const split = base.withCells([6 + 7, 6 + 2]);
    expect(split.size).toBe(base.size + 2 * 6);
    expect(split.players.slice(0, base.size)).toEqual(base.players);
    expect(split.baseSize).toBe(base.size);
    expect(split.cellsOf(6 + 7)).toEqual([22, 23, 24, 25, 26, 27]);
    expect(split.cellsOf(6 + 2)).toEqual([28, 29, 30, 31, 32, 33]);
    expect(split.cellsOf(6 + 3)).toEqual([]);
    expect(playerKey(split.players[24]!)).toBe('out@1,3:2');
    expect(split.unitsOf(24)).toBeCloseTo(1 / 6, 12);
    expect(split.unitsOf(6 + 7)).toBe(1);
    expect(split.unitsOf(3)).toBe(1);
    // Splitting again adds only the positions not split yet.
    expect(split.withCells([6 + 7, 6 + 9]).size).toBe(split.size + 6);
  });

  it('masking cells of split positions in a tail pass gives the predictions of the model with those cells pruned', async () => {
    const loaded = await loadTfjsModel(files);
    const info = describeModel(loaded.model);
    const set = new PlayerSet(info, playerLayers(info)).withCells([6 + 5, 6 + 10]);
    const [a, b] = [set.cellsOf(6 + 5), set.cellsOf(6 + 10)];
    // Cells of both split positions, a conv channel, and a whole position that was not split.
    const off = [a[0]!, a[4]!, b[1]!, 2, 6 + 15];
    const { tail, masked, changed, x, expected } = await maskedAndPruned(loaded, set, off);
    const diff = (p: tf.Tensor, q: tf.Tensor) => tf.max(tf.abs(tf.sub(p, q))).dataSync()[0]!;
    expect(diff(masked, expected)).toBeLessThan(1e-5);
    // A pruned cell zeroes its one channel's rows at its position; a pruned position all of its channels'.
    const kernel = changed.get('out/kernel')!;
    const original = loaded.model.getLayer('out').getWeights()[0]!.dataSync();
    const zeroRows = new Set([5 * 6 + 0, 5 * 6 + 4, 10 * 6 + 1, ...[0, 1, 2, 3, 4, 5].map((c) => 15 * 6 + c)]);
    for (let row = 0; row < 96; row++)
      for (let u = 0; u < 3; u++) expect(kernel[row * 3 + u]).toBe(zeroRows.has(row) ? 0 : original[row * 3 + u]);
    // The cells' game with everything else present is the whole game at those coalitions.
    const game = new BackdoorGame([{ tail, target: 1 }]);
    const sub = new SubGame(game, a);
    const only = Uint8Array.from(a, (_, i) => (i === 0 || i === 4 ? 0 : 1));
    const whole = new Uint8Array(set.size).fill(1);
    whole[a[0]!] = 0;
    whole[a[4]!] = 0;
    expect(sub.players).toBe(6);
    expect(sub.evaluate([only])[0]).toBeCloseTo(game.evaluate([whole])[0]!, 6);
    expect(sub.firstOrder().values).toEqual(a.map((k) => game.firstOrder().values[k]));
    tail.dispose();
    tf.dispose([masked, expected, x]);
  });

  it.each(['the scan players', 'players with split positions'])(
    'the first-order estimate that orders the first greedy walks is the gradient of the game in %s',
    async (which) => {
      const info = describeModel((await loadTfjsModel(files)).model);
      const base = new PlayerSet(info, playerLayers(info));
      const set = which === 'the scan players' ? base : base.withCells([6 + 5, 6 + 10]);
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
    },
  );
});

// Bench tables and certificate tests rebuild a refused or forced candidate from the players a run recorded.
describe('a pruning rebuilt from recorded player keys (bench/pruned-model.ts prunedByKeys)', () => {
  it('prunes the players the keys name, as the scan writes a repair, and names a key the model lacks', async () => {
    const loaded = await loadTfjsModel(files);
    const info = describeModel(loaded.model);
    const set = new PlayerSet(info, playerLayers(info));
    const { pruned, expected, x } = await maskedAndPruned(loaded, set, [0]);
    const rebuilt = await prunedByKeys(files, 'model.json', [playerKey(set.players[0]!)]);
    expect(Array.from(probs(describeModel(rebuilt).graph.run(x)).dataSync())).toEqual(Array.from(expected.dataSync()));
    await expect(prunedByKeys(files, 'model.json', ['nope:3'])).rejects.toThrow(/pruned player nope:3 is not among the model's players/);
    for (const t of [pruned, rebuilt]) t.dispose();
    loaded.model.dispose();
  });
});
