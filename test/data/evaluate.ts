import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { ImageSet } from './mnist.ts';
import { stamp, type Trigger } from './triggers.ts';

/** Predicted class of every image, in batches; `scale` maps the [0, 1] images into the model's range (255: raw pixels). */
export function predictClasses(model: tfl.LayersModel, images: Float32Array, shape: [number, number, number], scale = 1): Int32Array {
  const px = shape[0] * shape[1] * shape[2];
  const n = images.length / px;
  const out = new Int32Array(n);
  const batch = 256;
  for (let s = 0; s < n; s += batch) {
    const m = Math.min(batch, n - s);
    const cls = tf.tidy(() => {
      const x = tf.tensor4d(images.subarray(s * px, (s + m) * px), [m, ...shape]);
      return tf.argMax(model.predict(scale === 1 ? x : tf.mul(x, scale)) as tf.Tensor, -1);
    });
    out.set(cls.dataSync() as Int32Array, s);
    cls.dispose();
  }
  return out;
}

/** Clean accuracy on a labelled set. */
export function accuracy(model: tfl.LayersModel, set: ImageSet, scale = 1): number {
  const pred = predictClasses(model, set.images, set.shape, scale);
  let ok = 0;
  for (let i = 0; i < set.count; i++) if (pred[i] === set.labels[i]) ok++;
  return ok / set.count;
}

/** The set's images of every class but the target, with the trigger stamped: what an attack success rate is taken on. */
export function stampedNonTarget(set: ImageSet, trigger: Trigger, target: number): Float32Array {
  const px = set.shape[0] * set.shape[1] * set.shape[2];
  const keep: number[] = [];
  for (let i = 0; i < set.count; i++) if (set.labels[i] !== target) keep.push(i);
  const images = new Float32Array(keep.length * px);
  keep.forEach((i, j) => images.set(set.images.subarray(i * px, (i + 1) * px), j * px));
  return stamp(images, set.shape, trigger);
}

/** Attack success rate: share of non-target images that the stamped trigger sends to the target. */
export function attackSuccessRate(model: tfl.LayersModel, set: ImageSet, trigger: Trigger, target: number, scale = 1): number {
  const pred = predictClasses(model, stampedNonTarget(set, trigger, target), set.shape, scale);
  let hit = 0;
  for (const p of pred) if (p === target) hit++;
  return hit / pred.length;
}

/**
 * All-to-all success rate: the share of images whose stamped copy the model sends to their class's image
 * under `mapping`. Images whose class maps to itself are left out (none, for a derangement).
 */
export function allToAllSuccessRate(
  model: tfl.LayersModel,
  set: ImageSet,
  trigger: Trigger,
  mapping: readonly number[],
  scale = 1,
): number {
  const px = set.shape[0] * set.shape[1] * set.shape[2];
  const keep: number[] = [];
  for (let i = 0; i < set.count; i++) if (mapping[set.labels[i]!] !== set.labels[i]) keep.push(i);
  const images = new Float32Array(keep.length * px);
  keep.forEach((i, j) => images.set(set.images.subarray(i * px, (i + 1) * px), j * px));
  const pred = predictClasses(model, stamp(images, set.shape, trigger), set.shape, scale);
  let hit = 0;
  keep.forEach((i, j) => {
    if (pred[j] === mapping[set.labels[i]!]) hit++;
  });
  return keep.length > 0 ? hit / keep.length : NaN;
}
