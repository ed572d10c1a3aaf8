import { beforeAll, describe, expect, it } from 'vitest';
import { initWasmBackend } from '../../src/core/tfjs/backend.ts';
import { Budget } from '../../src/core/budget.ts';
import { loadModel } from '../../src/core/model/load.ts';
import { describeModel, type ModelInfo } from '../../src/core/model/model-info.ts';
import { Rng } from '../../src/core/util/rng.ts';
import { synthesize, SYNTH_DEFAULTS, type ImageBatch } from '../../src/core/stages/synthesis/synth.ts';
import { reverseTriggers, TRIGGER_DEFAULTS } from '../../src/core/stages/trigger/reverse.ts';
import { stampReversed } from '../../src/core/stages/trigger/stamp.ts';
import { predict } from '../../src/core/stages/verification/verify.ts';
import { nodeWasmPath } from '../../src/node/wasm-path.ts';
import { readDir, writeTinyModel } from '../helpers/tiny-model.ts';

let info: ModelInfo;
let rev: ImageBatch;
const stage = () => new Budget(1e9, Infinity).stage(1);
const cfg = { ...TRIGGER_DEFAULTS, maxSteps: 30, imagesPerTarget: 8, earlyStop: 10, restarts: 0 };
beforeAll(async () => {
  await initWasmBackend({ wasmPath: nodeWasmPath() });
  info = describeModel((await loadModel(readDir(await writeTinyModel()), 'model.json')).model);
  rev = synthesize(info, [0, 1], { ...SYNTH_DEFAULTS, maxSteps: 20 }, new Rng(4), stage()).rev;
});

/** The D_rev images of the given classes alone, in their order: what a pair's search sees of the batch. */
function onlyClasses(classes: readonly number[]): ImageBatch {
  const px = info.shape.reduce((x, y) => x * y, 1);
  const keep = Array.from({ length: rev.count }, (_, i) => i).filter((i) => classes.includes(rev.labels[i]!));
  return {
    images: Float32Array.from(keep.flatMap((i) => Array.from(rev.images.subarray(i * px, (i + 1) * px)))),
    labels: Int32Array.from(keep.map((i) => rev.labels[i]!)),
    count: keep.length,
  };
}

/** The share of `source`'s D_rev images that the trigger, stamped as the search stamps it, sends to `target`. */
function successOnSource(mask: Float32Array, pattern: Float32Array, source: number, target: number): number {
  const got = predict(info.graph, stampReversed(onlyClasses([source]), info.shape, mask, pattern, target), info.shape, 64);
  return got.filter((g) => g === target).length / got.length;
}

describe('pairwise trigger reverse (ReverseScope.pairs)', () => {
  it('optimises each pair on its source class images alone', () => {
    const pairs = [
      { source: 0, target: 1 },
      { source: 2, target: 1 },
      { source: 1, target: 0 },
    ];
    const res = reverseTriggers(info, rev, [0, 1], cfg, new Rng(7), stage(), { pairs });
    expect(res.triggers.map((t) => [t.source, t.target])).toEqual(pairs.map((p) => [p.source, p.target]));
    const perClass = SYNTH_DEFAULTS.revPerClass;
    for (const t of res.triggers) {
      expect(t.steps).toBeGreaterThan(0);
      // Its rows are every D_rev image of its source (revPerClass of them, under imagesPerTarget), so its
      // recorded success is its mask's success on them, one image in perClass apart at most (float order).
      expect(Math.abs(successOnSource(t.mask, t.pattern, t.source!, t.target) - t.success)).toBeLessThanOrEqual(1 / perClass + 1e-9);
    }
  });

  it('is the per-target reverse on a batch that holds only the source and the target', () => {
    // Same draws, same rows: a pair's search is the ordinary one with every other class taken out.
    const only = onlyClasses([2, 1]);
    const four = { ...cfg, imagesPerTarget: SYNTH_DEFAULTS.revPerClass };
    const pair = reverseTriggers(info, rev, [0, 1], four, new Rng(11), stage(), { pairs: [{ source: 2, target: 1 }] }).triggers[0]!;
    const plain = reverseTriggers(info, only, [0, 1], four, new Rng(11), stage(), { targets: [1] }).triggers[0]!;
    expect(pair.steps).toBeGreaterThan(0);
    expect(pair.norm).toBe(plain.norm);
    expect(Array.from(pair.mask)).toEqual(Array.from(plain.mask));
  });

  it('two pairs into one target keep apart: own rows, own masks', () => {
    const res = reverseTriggers(info, rev, [0, 1], cfg, new Rng(8), stage(), {
      pairs: [
        { source: 0, target: 1 },
        { source: 2, target: 1 },
      ],
    });
    expect(Array.from(res.triggers[0]!.mask)).not.toEqual(Array.from(res.triggers[1]!.mask));
  });

  it('a per-target reverse reports no source', () => {
    const res = reverseTriggers(info, rev, [0, 1], cfg, new Rng(9), stage(), { targets: [0, 1] });
    expect(res.triggers.map((t) => t.source)).toEqual([null, null]);
  });

  it('refuses a pair whose source has no D_rev image', () => {
    const none: ImageBatch = { ...rev, labels: rev.labels.map((l) => (l === 3 ? 4 : l)) };
    expect(() => reverseTriggers(info, none, [0, 1], cfg, new Rng(9), stage(), { pairs: [{ source: 3, target: 0 }] })).toThrow(
      /images of every source class/,
    );
  });
});
