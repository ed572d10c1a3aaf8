import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { prunedByKeys } from '../../bench/pruned-model.ts';
import { Budget } from '../../src/core/budget.ts';
import { loadModel } from '../../src/core/model/load.ts';
import { describeModel } from '../../src/core/model/model-info.ts';
import { scanModel } from '../../src/core/scan/scan.ts';
import { MIN_HELD_BACK_FLIPS } from '../../src/core/scan/steps.ts';
import { DETECT_DEFAULTS } from '../../src/core/stages/detection/detect.ts';
import { regionConfig, regionTest } from '../../src/core/stages/verification/region.ts';
import { rowsOf } from '../../src/core/sample/sample.ts';
import { initWasmBackend } from '../../src/core/tfjs/backend.ts';
import { readModelFiles } from '../../src/node/read-model.ts';
import { nodeWasmPath } from '../../src/node/wasm-path.ts';
import { attackSuccessRate } from '../data/evaluate.ts';
import { loadFashionMnist } from '../data/fashion.ts';
import { loadMnist } from '../data/mnist.ts';
import { stamp } from '../data/triggers.ts';
import { manifest, MODELS, ZOO, zooEntry } from '../helpers/fixtures.ts';
import { trustedSample } from '../helpers/sample.ts';
import { TEST_BOUNDS } from '../helpers/scan-bounds.ts';

// Issue 19: the region test lets the held-back check certify a pruning that removed the backdoor where the
// residual search alone refused it (a small natural trigger into the target remains), and still refuses
// one that only weakened it.

beforeAll(async () => {
  await initWasmBackend({ wasmPath: nodeWasmPath() });
});

describe('the region test on a real backdoored model, where the planted trigger sits', () => {
  const m = zooEntry('fashion-small-patch3-br');
  const test = loadFashionMnist('test', 5000);
  const [h, w, c] = test.shape;
  // Three real images per class the model never trained on and the judged set below does not hold.
  const rows: number[] = [];
  for (let i = 3000; i < 5000 && rows.length < 30; i++) if (rows.filter((r) => test.labels[r] === test.labels[i]).length < 3) rows.push(i);
  const px = h * w * c;
  const held = rowsOf({ images: test.images, labels: Int32Array.from(test.labels), count: test.count }, rows);
  // The planted trigger's pixels: where stamping it overwrites an image of NaNs.
  const marked = stamp(new Float32Array(px).fill(Number.NaN), test.shape, m.attack!.trigger);
  const mask = Float32Array.from({ length: h * w }, (_, p) => (Number.isNaN(marked[p * c]!) ? 0 : 1));
  const judged = loadFashionMnist('test', 2000);

  async function judge(keys: string[], layers?: string[]) {
    const { files, entry } = await readModelFiles(join(ZOO, m.path));
    const original = (await loadModel(files, entry)).model;
    const candidate: tfl.LayersModel = await prunedByKeys(files, entry, keys, layers);
    const asr = attackSuccessRate(candidate, judged, m.attack!.trigger, m.attack!.target);
    const scope = {
      original: describeModel(original),
      repaired: describeModel(candidate),
      images: held,
      minPower: DETECT_DEFAULTS.residualSuccessHigh,
      minFlips: MIN_HELD_BACK_FLIPS,
    };
    const budget = new Budget(100_000, 1_000_000);
    const tensors = tf.memory().numTensors;
    const { finding, cut } = regionTest({ target: m.attack!.target, mask }, scope, regionConfig(DETECT_DEFAULTS), budget.stage(1));
    // A scan runs in a long-lived process: the test leaves no tensor behind.
    expect(tf.memory().numTensors).toBe(tensors);
    original.dispose();
    candidate.dispose();
    return { asr, finding, cut };
  }

  it('is not cleared after a pruning that leaves the planted trigger working', async () => {
    // The forced three-channel pruning of test/wasm/certificate.test.ts (docs/benchmarks.md, forced prunings).
    const { asr, finding, cut } = await judge(['conv2:12', 'conv2:7', 'conv2:13'], ['conv2']);
    expect(asr).toBeGreaterThan(0.1);
    expect(cut).toBe(false);
    expect(finding.images).toBe(27);
    expect(finding.before).toBeGreaterThanOrEqual(0.5 * 27);
    expect(finding.after).toBeGreaterThanOrEqual(MIN_HELD_BACK_FLIPS);
    expect(finding.cleared).toBe(false);
    expect(finding.reason).toMatch(new RegExp(`still sends ${finding.after} of 27 held-back images to it`));
  }, 120_000);

  it('is cleared after pruning the position the trigger enters the classifier through', async () => {
    const { asr, finding } = await judge(['fc1@4,4']);
    expect(asr).toBeLessThanOrEqual(0.02);
    expect(finding.before).toBeGreaterThanOrEqual(0.5 * 27);
    expect(finding.after).toBeLessThan(MIN_HELD_BACK_FLIPS);
    expect(finding).toMatchObject({ cleared: true, reason: null });
  }, 120_000);
});

describe('a few-shot scan whose held-back residual search alone would refuse a right repair', () => {
  it('certifies it through the region test, and the repaired model is free of the planted trigger', async () => {
    // mnist-patch4 at seed 3 (docs/benchmarks.md, "The region test"): pruning fc1@0,0 leaves 0.4% of the
    // planted 4×4 patch, yet a trigger into class 2 on the held-back digits stays 0.58 of the smallest
    // clean class's; until the region test the check refused this repair.
    const entry = manifest().find((x) => x.name === 'mnist-patch4')!;
    const { files, entry: file } = await readModelFiles(join(MODELS, entry.path));
    const { report, repaired } = await scanModel(files, {
      entry: file,
      seed: 3,
      toolVersion: 'test',
      ...TEST_BOUNDS,
      cleanSample: await trustedSample('mnist', 10),
    });
    const held = report.repair!.check!.heldBack!;
    const residual = held.targets.find((t) => t.target === entry.attack!.target)!;
    expect(residual.removed).toBe(false);
    const region = held.region.find((r) => r.target === entry.attack!.target)!;
    expect(region).toMatchObject({ cleared: true, reason: null });
    expect(region.before).toBeGreaterThanOrEqual(0.5 * region.images);
    expect(report.repair!.status).toBe('repaired');
    expect(repaired).not.toBeNull();
    const fixed = (await loadModel(repaired!, file)).model;
    expect(attackSuccessRate(fixed, loadMnist('test', 3000), entry.attack!.trigger, entry.attack!.target)).toBeLessThanOrEqual(0.02);
    fixed.dispose();
  }, 300_000);
});
