import * as tf from '@tensorflow/tfjs-core';
import type { Stage } from '../../budget.ts';
import { logProbs, type ModelInfo } from '../../model/model-info.ts';
import { readAndDispose, variableFrom } from '../../tfjs/tensors.ts';
import type { DetectConfig } from '../detection/detect.ts';
import type { ImageBatch } from '../synthesis/synth.ts';

/**
 * The region test: whether the place where the flagged trigger was found still carries it after pruning.
 *
 * The residual search (certify.ts) asks whether *any* small trigger still reaches the target, and after a
 * right repair one often does: the target keeps a natural shortcut smaller than the clean classes' (on the
 * zoo's tuning half, the scan's own prunings the held-back check refused over five seeds left 0.4–4.9% of
 * the planted trigger). A backdoor lives in a place, though: a pattern confined to the pixels the reversed
 * trigger covered (widened, since the reverse often finds only part of a planted patch) sends nearly every
 * held-back image to the target on the original model. In the probe the rule was chosen on (27 real
 * images), after forced prunings that kept 28–33% of the planted trigger it still sent 13–17, after those
 * that kept at most 2.4% at most 1. docs/benchmarks.md, "The region test".
 */

/** The test's settings (DetectConfig's region* fields, which reports record). */
export interface RegionConfig {
  /** Pixels whose reversed-mask value is at least this share of the mask's peak make the region's core. */
  threshold: number;
  /** How many pixels the core is widened by on every side. */
  dilate: number;
  /** Adam steps per start; each start stops early once every image reaches the class. */
  steps: number;
  learningRate: number;
  /** The pattern's starting values before the sigmoid (0: grey, −2: dark, 2: light), one optimisation each. */
  starts: number[];
}

/** The test's settings as the scan's detection settings hold them (and reports record them). */
export function regionConfig(d: DetectConfig): RegionConfig {
  return {
    threshold: d.regionThreshold,
    dilate: d.regionDilate,
    steps: d.regionSteps,
    learningRate: d.regionLearningRate,
    starts: d.regionStarts,
  };
}

/** The region (h×w, 0 or 1) a reversed mask marks: its pixels at ≥ `threshold` of its peak, widened by `dilate`. */
export function triggerRegion(mask: Float32Array, h: number, w: number, cfg: Pick<RegionConfig, 'threshold' | 'dilate'>): Float32Array {
  let peak = 0;
  for (const v of mask) peak = Math.max(peak, v);
  const out = new Float32Array(h * w);
  if (!(peak > 0)) return out;
  for (let i = 0; i < h; i++)
    for (let j = 0; j < w; j++) {
      if (mask[i * w + j]! < cfg.threshold * peak) continue;
      for (let y = Math.max(0, i - cfg.dilate); y <= Math.min(h - 1, i + cfg.dilate); y++)
        for (let x = Math.max(0, j - cfg.dilate); x <= Math.min(w - 1, j + cfg.dilate); x++) out[y * w + x] = 1;
    }
  return out;
}

/** What one confined optimisation reached: images sent to the class, of how many, and whether the budget cut it. */
export interface RegionReach {
  hits: number;
  rows: number;
  cut: boolean;
}

/**
 * The most of `images` (those not of `target`) that one pattern, confined to `region` and optimised from
 * each of `cfg.starts`, makes `info` classify as `target`. Deterministic: no random draw.
 */
export function regionReach(
  info: ModelInfo,
  images: ImageBatch,
  region: Float32Array,
  target: number,
  cfg: RegionConfig,
  stage: Stage,
): RegionReach {
  const [h, w, c] = info.shape;
  const px = h * w * c;
  const keep: number[] = [];
  for (let r = 0; r < images.count; r++) if (images.labels[r] !== target) keep.push(r);
  const rows = keep.length;
  if (rows === 0) return { hits: 0, rows, cut: false };
  const xs = new Float32Array(rows * px);
  keep.forEach((r, j) => xs.set(images.images.subarray(r * px, (r + 1) * px), j * px));
  const x = tf.tensor4d(xs, [rows, h, w, c]);
  const m = tf.tensor4d(region, [1, h, w, 1]);
  const onehot = tf.tidy(() => tf.oneHot(tf.fill([rows], target, 'int32'), info.classes));
  let best = 0;
  let cut = false;
  try {
    for (const start of cfg.starts) {
      if (best === rows) break;
      const z = variableFrom(tf.fill([1, h, w, c], start));
      const opt = tf.train.adam(cfg.learningRate);
      const stamped = () => tf.add(tf.mul(x, tf.sub(1, m)), tf.mul(m, tf.sigmoid(z)));
      const hitsNow = () =>
        (
          readAndDispose(tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(info.graph.run(stamped()), 1), target), 'int32')))) as Int32Array
        )[0]!;
      try {
        for (let s = 0; s <= cfg.steps; s++) {
          if (stage.exhausted() !== null || !stage.fits(rows)) {
            cut = true;
            break;
          }
          const hits = hitsNow();
          stage.spend(rows);
          best = Math.max(best, hits);
          if (hits === rows || s === cfg.steps) break;
          if (stage.exhausted() !== null || !stage.fits(3 * rows)) {
            cut = true;
            break;
          }
          opt.minimize(() => tf.neg(tf.mean(tf.sum(tf.mul(logProbs(info.graph.run(stamped())), onehot), 1))) as tf.Scalar, false, [z]);
          stage.spend(3 * rows);
        }
      } finally {
        z.dispose();
        opt.dispose();
      }
      if (cut) break;
    }
  } finally {
    tf.dispose([x, m, onehot]);
  }
  return { hits: best, rows, cut };
}

/** One flagged target's region test, as report.json records it (repair.check.heldBack.region). */
export interface RegionFinding {
  target: number;
  /** Pixels in the region. */
  pixels: number;
  /** Held-back images of other classes the test optimises on. */
  images: number;
  /** Images a confined pattern sends to the target: on the original model (the test's power), on the repaired one. */
  before: number;
  after: number;
  /** The region no longer carries the trigger: the test had power, and the target gets fewer than the fewest that count. */
  cleared: boolean;
  /** Why not, in words; null when cleared. */
  reason: string | null;
}

/** What `regionTest` needs of the scan: the models before and after, and the rule's two bounds. */
export interface RegionScope {
  original: ModelInfo;
  repaired: ModelInfo;
  images: ImageBatch;
  /** The original must send at least this share of the images to the target through the region. */
  minPower: number;
  /** Sending this many images to the target after pruning means the region still carries the trigger. */
  minFlips: number;
}

/**
 * The region test for one flagged trigger (its target and reversed mask): the region's reach into the
 * target on the original model (its power) and on the repaired one. The bound is absolute, not relative
 * to clean classes: a region that reaches a few images into the target is refused whatever the clean
 * classes reach there, since a refusal costs a repair and a false pass ships a backdoor.
 */
export function regionTest(
  trigger: { target: number; mask: Float32Array },
  scope: RegionScope,
  cfg: RegionConfig,
  stage: Stage,
): { finding: RegionFinding; cut: boolean } {
  const [h, w] = scope.original.shape;
  const region = triggerRegion(trigger.mask, h, w, cfg);
  const pixels = region.reduce((a, b) => a + b, 0);
  const before = regionReach(scope.original, scope.images, region, trigger.target, cfg, stage);
  const after = before.cut ? before : regionReach(scope.repaired, scope.images, region, trigger.target, cfg, stage);
  const cut = before.cut || after.cut;
  const found = { target: trigger.target, pixels, images: after.rows, before: before.hits, after: after.hits };
  const t = trigger.target;
  if (cut) return { finding: { ...found, cleared: false, reason: `the region test for class ${t} was cut by the budget` }, cut };
  if (before.hits < scope.minPower * before.rows) {
    const reason = `a pattern confined to where class ${t}'s trigger was found sends only ${before.hits} of ${before.rows} held-back images to it on the original model, too few for the region test to show anything`;
    return { finding: { ...found, cleared: false, reason }, cut };
  }
  if (after.hits >= scope.minFlips) {
    const reason = `a pattern confined to where class ${t}'s trigger was found still sends ${after.hits} of ${after.rows} held-back images to it (${before.hits} before pruning; fewer than ${scope.minFlips} needed)`;
    return { finding: { ...found, cleared: false, reason }, cut };
  }
  return { finding: { ...found, cleared: true, reason: null }, cut };
}
