import * as tf from '@tensorflow/tfjs-core';
import type { Stage, StopReason } from '../../budget.ts';
import { BN_CLASSES, bnGradients, bnSurrogate, disposeBnGradients } from './bn-match.ts';
import { groupedStep } from '../../tfjs/grouped-step.ts';
import { readAndDispose, variableFrom } from '../../tfjs/tensors.ts';
import { logProbs, type ModelInfo } from '../../model/model-info.ts';
import type { Rng } from '../../util/rng.ts';

export interface SynthConfig {
  /** Images per class for D_rev (trigger reverse, Shapley, pruning). */
  revPerClass: number;
  /** Images per class for D_ver (final verification only). */
  verPerClass: number;
  /** Images per class for D_guard (the accuracy guard of pruning only). */
  guardPerClass: number;
  maxSteps: number;
  learningRate: number;
  tv: number;
  l2: number;
  /** Weight of the DeepInversion BatchNorm-statistics term (used only when the model has BN). */
  bn: number;
  /** Stop once every image is its class with at least this probability. */
  confidence: number;
  /** A scan whose synthesis leaves more than this share of images below `confidence` is incomplete. */
  minConfident: number;
  /**
   * Where the images start, before the sigmoid that maps them into the input range: 0 is mid-grey noise,
   * −2.5 a dark image, 2.5 a light one. Each start is a synthesis of its own, with its own trigger reverse,
   * and detection weighs every class's trigger over all of them (scan/steps.ts): what a model does with a
   * trigger depends on the background, so the images of one start can lack a planted backdoor that
   * another's carry (docs/benchmarks.md).
   */
  starts: number[];
  /**
   * The resolution the images are optimised at, as a share of the input's (1: every pixel free): below 1,
   * each image is a coarser grid bilinearly enlarged to the input size, so it has no pixel-level noise for
   * a mask to exploit (multi-resolution synthesis).
   */
  resolution: number;
}

export const SYNTH_DEFAULTS: SynthConfig = {
  revPerClass: 4,
  verPerClass: 2,
  guardPerClass: 4,
  maxSteps: 200,
  learningRate: 0.1,
  tv: 0.05,
  l2: 0.01,
  bn: 0.05,
  confidence: 0.9,
  minConfident: 0.95,
  starts: [0],
  resolution: 1,
};

/** A synthetic labelled image set, N×H×W×C in the model's input range. */
export interface ImageBatch {
  images: Float32Array;
  labels: Int32Array;
  count: number;
}

export interface SynthResult {
  rev: ImageBatch;
  ver: ImageBatch;
  guard: ImageBatch;
  steps: number;
  /** Share of images predicted as their class with p ≥ confidence at the end. */
  confident: number;
  stoppedBy: StopReason | 'converged' | 'steps';
}

function totalVariation(x: tf.Tensor4D): tf.Scalar {
  return tf.tidy(() => {
    const [, h, w] = x.shape;
    const dh = tf.sub(tf.slice(x, [0, 1, 0, 0], [-1, h - 1, -1, -1]), tf.slice(x, [0, 0, 0, 0], [-1, h - 1, -1, -1]));
    const dw = tf.sub(tf.slice(x, [0, 0, 1, 0], [-1, -1, w - 1, -1]), tf.slice(x, [0, 0, 0, 0], [-1, -1, w - 1, -1]));
    return tf.add(tf.mean(tf.abs(dh)), tf.mean(tf.abs(dw))) as tf.Scalar;
  });
}

/**
 * Data reverse: images the model itself calls class k with high confidence, optimised from noise, with
 * smoothness priors and (for BN models) DeepInversion's matching of each BatchNorm's batch statistics to
 * its running statistics, which keeps the images close to what the model saw in training. `background`
 * is the start the images begin from (one of SynthConfig.starts).
 */
export function synthesize(
  info: ModelInfo,
  range: [number, number],
  cfg: SynthConfig,
  rng: Rng,
  stage: Stage,
  rowsPerPass = Infinity,
  background = cfg.starts[0] ?? 0,
): SynthResult {
  const [h, w, c] = info.shape;
  const K = info.classes;
  const per = cfg.revPerClass + cfg.verPerClass + cfg.guardPerClass;
  const n = K * per;
  const labels = Int32Array.from({ length: n }, (_, i) => Math.floor(i / per));
  const [lo, hi] = range;
  const coarse = cfg.resolution < 1;
  const [zh, zw] = coarse ? [Math.max(2, Math.round(h * cfg.resolution)), Math.max(2, Math.round(w * cfg.resolution))] : [h, w];
  const z = variableFrom(
    tf.tensor4d(
      Float32Array.from({ length: n * zh * zw * c }, () => background + rng.normal() * 0.5),
      [n, zh, zw, c],
    ),
  );
  const oneHot = tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), K));
  const opt = tf.train.adam(cfg.learningRate);
  const bnTargets = new Map(info.bn.map((s) => [s.layer, s]));
  const useBn = cfg.bn !== 0 && info.bn.length > 0;
  // Backward costs about twice the forward: a step is 3 full-forward evaluations per row, plus one
  // forward for the BatchNorm statistics.
  const stepCost = (useBn ? 4 : 3) * n;
  let steps = 0;
  let confident = 0;
  let stoppedBy: SynthResult['stoppedBy'] = 'steps';
  const kept: tf.Tensor[] = [];
  const toImage = (v: tf.Tensor) =>
    tf.add(lo, tf.mul(hi - lo, tf.sigmoid(coarse ? tf.image.resizeBilinear(v as tf.Tensor4D, [h, w], true) : v))) as tf.Tensor4D;
  const rowsOf = (start: number, size: number) => toImage(tf.slice(z, [start, 0, 0, 0], [size, -1, -1, -1]));
  for (; steps < cfg.maxSteps;) {
    const stop = stage.exhausted();
    if (stop) {
      stoppedBy = stop;
      break;
    }
    if (!stage.fits(stepCost)) {
      stoppedBy = 'evaluations';
      break;
    }
    // Rows are processed in groups that fit the memory budget; each group's terms are weighted by its
    // share of the rows, so this is exactly the full-batch objective. The BatchNorm term depends on the
    // whole batch's statistics: they are measured first, without gradients, and each group then carries a
    // first-order surrogate whose gradient, summed over the groups, is the full batch's exact gradient.
    const bnGrad = useBn ? bnGradients(info, rowsOf, n, rowsPerPass, bnTargets) : null;
    const probParts: tf.Tensor[] = [];
    groupedStep(opt, [z], n, rowsPerPass, (a, g) => {
      const x = rowsOf(a, g);
      const bnLosses: tf.Scalar[] = [];
      const y = info.graph.run(x, {
        tapClasses: BN_CLASSES,
        tap: (layer, input) => {
          const gr = bnGrad?.get(layer.name);
          // The graph runs inside tidy(): keep the term past it (disposed after the step).
          if (gr) bnLosses.push(tf.keep(bnSurrogate(input, gr)));
        },
      });
      const lp = logProbs(y);
      const picked = tf.sum(tf.mul(lp, tf.slice(oneHot, [a, 0], [g, -1])), 1);
      probParts.push(tf.keep(tf.exp(picked)));
      let loss = tf.mul(tf.neg(tf.mean(picked)), g / n);
      loss = tf.add(loss, tf.mul(cfg.tv * (g / n), totalVariation(x)));
      loss = tf.add(loss, tf.mul(cfg.l2 * (g / n), tf.mean(tf.square(x))));
      if (bnLosses.length > 0) loss = tf.add(loss, tf.mul(cfg.bn / bnLosses.length, tf.addN(bnLosses)));
      kept.push(...bnLosses);
      return loss as tf.Scalar;
    });
    if (bnGrad) disposeBnGradients(bnGrad);
    const targetProb = tf.concat(probParts);
    tf.dispose(probParts);
    tf.dispose(kept.splice(0));
    stage.spend(stepCost);
    steps++;
    const p = readAndDispose(targetProb);
    confident = p.filter((v) => v >= cfg.confidence).length / n;
    stage.tick(
      Math.max(steps / cfg.maxSteps, confident),
      `step ${steps}, ${Math.round(confident * 100)}% of images confidently their class`,
    );
    if (confident === 1) {
      stoppedBy = 'converged';
      break;
    }
  }
  const images = readAndDispose(tf.tidy(() => toImage(z))) as Float32Array;
  z.dispose();
  oneHot.dispose();
  opt.dispose();
  // Interleave by class position: the first revPerClass of each class go to D_rev, the next verPerClass to
  // D_ver, the rest to D_guard.
  const px = h * w * c;
  const split = (take: (j: number) => boolean): ImageBatch => {
    const idx = Array.from({ length: n }, (_, i) => i).filter((i) => take(i % per));
    const out = new Float32Array(idx.length * px);
    idx.forEach((i, j) => out.set(images.subarray(i * px, (i + 1) * px), j * px));
    return { images: out, labels: Int32Array.from(idx, (i) => labels[i]!), count: idx.length };
  };
  const ver = cfg.revPerClass + cfg.verPerClass;
  return {
    rev: split((j) => j < cfg.revPerClass),
    ver: split((j) => j >= cfg.revPerClass && j < ver),
    guard: split((j) => j >= ver),
    steps,
    confident,
    stoppedBy,
  };
}
