import * as tf from '@tensorflow/tfjs-core';
import type { Graph } from '../../tfjs/graph.ts';
import type { Metrics } from '../../output/report.ts';
import { stampReversed } from '../trigger/stamp.ts';
import type { ImageBatch } from '../synthesis/synth.ts';
import type { ReversedTrigger } from '../trigger/reverse.ts';
import { readAndDispose } from '../../tfjs/tensors.ts';

/** Predicted class of each image, through `graph`, in batches of `batch`. */
export function predict(graph: Graph, images: Float32Array, shape: [number, number, number], batch = 64): Int32Array {
  const px = shape[0] * shape[1] * shape[2];
  const n = images.length / px;
  const out = new Int32Array(n);
  for (let s = 0; s < n; s += batch) {
    const m = Math.min(batch, n - s);
    const t = tf.tidy(() => tf.argMax(graph.run(tf.tensor4d(images.subarray(s * px, (s + m) * px), [m, ...shape])), 1));
    out.set(readAndDispose(t), s);
  }
  return out;
}

/** Metrics on the held-back synthetic set D_ver: what the scanner itself can say about a model. */
export function measure(
  graph: Graph,
  ver: ImageBatch,
  shape: [number, number, number],
  triggers: ReversedTrigger[],
  reference: Int32Array | null,
  batch = 64,
): { metrics: Metrics; predictions: Int32Array } {
  const predictions = predict(graph, ver.images, shape, batch);
  let agree = 0;
  let correct = 0;
  for (let i = 0; i < ver.count; i++) {
    if (reference === null || predictions[i] === reference[i]) agree++;
    if (predictions[i] === ver.labels[i]) correct++;
  }
  const reversedAsr: Record<string, number> = {};
  for (const t of triggers) {
    const stamped = stampReversed(ver, shape, t.mask, t.pattern, t.target);
    const pred = predict(graph, stamped, shape, batch);
    reversedAsr[String(t.target)] = pred.length === 0 ? 0 : pred.filter((p) => p === t.target).length / pred.length;
  }
  return { metrics: { reversedAsr, agreement: agree / ver.count, syntheticAccuracy: correct / ver.count }, predictions };
}
