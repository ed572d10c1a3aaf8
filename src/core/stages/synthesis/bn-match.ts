import * as tf from '@tensorflow/tfjs-core';
import type { ModelInfo } from '../../model/model-info.ts';

/**
 * DeepInversion's BatchNorm term, ||mean − μ|| + ||variance − σ²|| of a batch at a BN input against the
 * layer's running statistics, for a batch too big to hold in memory at once. The term depends on the whole
 * batch's statistics, so they are measured first without gradients; each row group then carries a
 * surrogate whose gradient, summed over the groups, is the full batch's exact gradient.
 */

/** The constants of one BN layer's surrogate, from the whole batch's statistics. */
export interface BnGradient {
  /** d/dmean and d/dvariance of the term at the batch's statistics. */
  gMean: tf.Tensor1D;
  gVar: tf.Tensor1D;
  mean: tf.Tensor1D;
  /** Values per channel in the whole batch (rows × height × width). */
  count: number;
}

/** The layer classes whose inputs the BatchNorm term taps. */
export const BN_CLASSES: ReadonlySet<string> = new Set(['BatchNormalization']);

/** The exact term for one batch held at once (the reference the surrogate reproduces). */
export function bnMatchLoss(input: tf.Tensor, target: { mean: tf.Tensor1D; variance: tf.Tensor1D }): tf.Scalar {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(input, [0, 1, 2]);
    return tf.add(tf.norm(tf.sub(mean, target.mean)), tf.norm(tf.sub(variance, target.variance))) as tf.Scalar;
  });
}

/**
 * Runs the `n` rows through the model in groups of `rowsPerPass` (`rows(start, size)` makes a group's
 * images) with no gradient and returns, per BN layer in `targets`, its surrogate's constants.
 */
export function bnGradients(
  info: ModelInfo,
  rows: (start: number, size: number) => tf.Tensor4D,
  n: number,
  rowsPerPass: number,
  targets: ReadonlyMap<string, { mean: tf.Tensor1D; variance: tf.Tensor1D }>,
): Map<string, BnGradient> {
  const sums = new Map<string, { sum: tf.Tensor; sq: tf.Tensor; count: number }>();
  const group = Math.max(1, Math.min(n, Math.floor(rowsPerPass)));
  for (let a = 0; a < n; a += group) {
    tf.tidy(() => {
      info.graph.run(rows(a, Math.min(group, n - a)), {
        tapClasses: BN_CLASSES,
        tap: (layer, input) => {
          if (!targets.has(layer.name)) return;
          const prev = sums.get(layer.name);
          const sum = tf.sum(input, [0, 1, 2]);
          const sq = tf.sum(tf.square(input), [0, 1, 2]);
          const count = input.size / input.shape.at(-1)!;
          // The graph runs inside tidy(): the running sums are kept past it by hand.
          sums.set(
            layer.name,
            prev
              ? { sum: tf.keep(tf.add(prev.sum, sum)), sq: tf.keep(tf.add(prev.sq, sq)), count: prev.count + count }
              : { sum: tf.keep(sum), sq: tf.keep(sq), count },
          );
          if (prev) tf.dispose([prev.sum, prev.sq]);
        },
      });
    });
  }
  const out = new Map<string, BnGradient>();
  for (const [layer, s] of sums) {
    const t = targets.get(layer)!;
    const grads = tf.tidy(() => {
      const mean = tf.div(s.sum, s.count) as tf.Tensor1D;
      const variance = tf.sub(tf.div(s.sq, s.count), tf.square(mean));
      // d||u||/du = u/||u|| (0 where u = 0).
      const unit = (u: tf.Tensor) => tf.div(u, tf.maximum(tf.norm(u), 1e-12)) as tf.Tensor1D;
      return { gMean: unit(tf.sub(mean, t.mean)), gVar: unit(tf.sub(variance, t.variance)), mean };
    });
    tf.dispose([s.sum, s.sq]);
    out.set(layer, { ...grads, count: s.count });
  }
  return out;
}

/**
 * One group's surrogate at a BN input: Σ_c (g_m·Σx + g_v·(Σx² − 2m·Σx)) / count over the group's values,
 * whose gradient is (g_m + g_v·(2x − 2m)) / count, each value's share of the whole batch's gradient.
 */
export function bnSurrogate(input: tf.Tensor, gr: BnGradient): tf.Scalar {
  return tf.tidy(() => {
    const sum = tf.sum(input, [0, 1, 2]);
    const sq = tf.sum(tf.square(input), [0, 1, 2]);
    const term = tf.add(tf.mul(gr.gMean, sum), tf.mul(gr.gVar, tf.sub(sq, tf.mul(tf.mul(2, gr.mean), sum))));
    return tf.div(tf.sum(term), gr.count) as tf.Scalar;
  });
}

export function disposeBnGradients(grads: ReadonlyMap<string, BnGradient>): void {
  for (const g of grads.values()) tf.dispose([g.gMean, g.gVar, g.mean]);
}
