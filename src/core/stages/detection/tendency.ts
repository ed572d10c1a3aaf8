import * as tf from '@tensorflow/tfjs-core';
import type { Stage, StopReason } from '../../budget.ts';
import type { ModelInfo } from '../../model/model-info.ts';
import { readAndDispose } from '../../tfjs/tensors.ts';
import type { Rng } from '../../util/rng.ts';
import type { DetectConfig } from './detect.ts';

/**
 * The classifier head's tendency (after FreeEagle, Fu et al., USENIX Security 2023): a second detection
 * signal that does not rest on synthetic images. For every class, a stand-in for the features entering the
 * first Dense layer is optimised until the head calls it that class; a backdoor's target is a shortcut
 * every class's features partly activate, so the head leans towards it from the other classes' stand-ins.
 * Measured on the zoo's tuning half (docs/benchmarks.md), the leaning alone also picks natural favourites
 * of clean heads (a clean wide head's class 7 at 1.93), but where it agrees with a smallish reversed
 * trigger it finds planted targets the mask-size rule misses (4×4 patches at 0.27–0.30 of the median).
 */
/** The settings measureTendency reads: where the scan keeps them, with every detection threshold. */
export type TendencyConfig = Pick<DetectConfig, 'tendencySteps' | 'tendencyLearningRate' | 'tendencyWeightDecay' | 'tendencyLogitScale'>;

/** The steps measured on the zoo (docs/benchmarks.md): what `detection.tendencySteps` opts in with. */
export const TENDENCY_STEPS = 1000;

export interface Tendency {
  /** The layer whose input the stand-ins replace. */
  layer: string;
  /** Per class, its mean normalised logit on the other classes' stand-ins. */
  perClass: number[];
  /** The class the head leans towards most, and how far it stands out: (max − Q3) / (Q3 − Q1). */
  target: number;
  anomaly: number;
  steps: number;
  /** The bound that cut the optimisation short (the signal then says nothing), or null. */
  stoppedBy: StopReason;
}

/** The first Dense layer whose input alone feeds the rest of the graph: the classifier head. */
export function headCut(info: ModelInfo): { step: number; value: number } | null {
  const { graph } = info;
  const step = graph.steps.findIndex((s) => s.layer.getClassName() === 'Dense');
  if (step < 0) return null;
  const value = graph.cutBefore(step);
  return value === null ? null : { step, value };
}

/** Linear-interpolated quantile of sorted values, as numpy's default. */
function quantile(sorted: readonly number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/**
 * The class with the largest tendency and its outlier measure against the quartiles of all classes: an
 * interquartile measure, since one class far out must not widen the spread it is measured against.
 */
export function tendencyOutlier(perClass: readonly number[]): { target: number; anomaly: number } {
  const target = perClass.reduce((b, v, i) => (v > perClass[b]! ? i : b), 0);
  const sorted = [...perClass].sort((a, b) => a - b);
  const q1 = quantile(sorted, 0.25);
  const q3 = quantile(sorted, 0.75);
  const iqr = q3 - q1;
  return { target, anomaly: iqr > 0 ? (perClass[target]! - q3) / iqr : 0 };
}

/**
 * Per class (column), its mean over the other classes' rows of the row-normalised logits (each row centred
 * and divided by its root mean square), the diagonal left out: how far the head leans to it from elsewhere.
 */
export function columnTendency(logits: Float32Array, classes: number): number[] {
  const out = new Array<number>(classes).fill(0);
  for (let r = 0; r < classes; r++) {
    const row = logits.subarray(r * classes, (r + 1) * classes);
    const mean = row.reduce((a, b) => a + b, 0) / classes;
    const rms = Math.sqrt(row.reduce((a, b) => a + (b - mean) ** 2, 0) / classes) || 1;
    for (let c = 0; c < classes; c++) if (c !== r) out[c]! += (row[c]! - mean) / rms / (classes - 1);
  }
  return out;
}

/**
 * Optimises one stand-in per class at the head's input and measures the head's tendency; null when the model
 * has no such head. `bases` are images the model calls their class (the synthesis's): the features they
 * give at the cut tell whether the stand-ins must stay non-negative (the cut follows a ReLU).
 */
export function measureTendency(info: ModelInfo, bases: Float32Array, cfg: TendencyConfig, rng: Rng, stage: Stage): Tendency | null {
  const cut = headCut(info);
  if (cut === null || cfg.tendencySteps <= 0) return null;
  const { graph, shape, classes: K } = info;
  const [h, w, c] = shape;
  const rows = Math.min(bases.length / (h * w * c), 64);
  const probe = tf.tensor4d(bases.subarray(0, rows * h * w * c), [rows, h, w, c]);
  const cached = graph.prefixInput(probe, cut.step);
  probe.dispose();
  const features = cached.get(cut.value)!;
  const featureShape = features.shape.slice(1);
  const nonNegative = (readAndDispose(tf.min(features)) as Float32Array)[0]! >= 0;
  tf.dispose([...cached.values()]);
  const size = featureShape.reduce((a, b) => a * b, 1);
  const init = new Float32Array(K * size);
  for (let i = 0; i < init.length; i++) init[i] = rng.next();
  const standIns = tf.variable(tf.tensor(init, [K, ...featureShape]));
  const logitsOf = (x: tf.Tensor) => graph.tailFrom(new Map([[cut.value, x]]), cut.step);
  const spread = tf.tidy(() => {
    const y = logitsOf(standIns);
    return (tf.sqrt(tf.mean(tf.square(tf.sub(y, tf.mean(y, 1, true))))).dataSync() as Float32Array)[0]!;
  });
  const scale = spread > 0 ? cfg.tendencyLogitScale / spread : 1;
  const labels = tf.tidy(() => tf.oneHot(tf.range(0, K, 1, 'int32'), K));
  const opt = tf.train.adam(cfg.tendencyLearningRate);
  // Forward and backward through the head, per stand-in, as full-forward rows.
  const tailMacs = info.stepMacs.slice(cut.step).reduce((a, b) => a + b, 0);
  const perStep = (3 * K * tailMacs) / info.totalMacs;
  let steps = 0;
  let stoppedBy: StopReason = null;
  try {
    for (; steps < cfg.tendencySteps; steps++) {
      stoppedBy = stage.exhausted();
      if (stoppedBy !== null) break;
      opt.minimize(
        () => {
          const logp = tf.logSoftmax(tf.mul(logitsOf(standIns), scale));
          const ce = tf.neg(tf.sum(tf.mul(logp, labels)));
          return tf.add(ce, tf.mul(0.5 * cfg.tendencyWeightDecay, tf.sum(tf.square(standIns)))) as tf.Scalar;
        },
        false,
        [standIns],
      );
      if (nonNegative) tf.tidy(() => void standIns.assign(tf.relu(standIns)));
      stage.spend(perStep);
      if (steps % 50 === 0) stage.tick(steps / cfg.tendencySteps, `head tendency: step ${steps} of ${cfg.tendencySteps}`);
    }
    const logits = readAndDispose(tf.tidy(() => logitsOf(standIns))) as Float32Array;
    const perClass = columnTendency(logits, K);
    return { layer: graph.steps[cut.step]!.layer.name, perClass, ...tendencyOutlier(perClass), steps, stoppedBy };
  } finally {
    tf.dispose([standIns, labels]);
    opt.dispose();
  }
}
