import * as tf from '@tensorflow/tfjs-core';
import { getGradient, MaxPool, type GradConfig, type NamedAttrMap } from '@tensorflow/tfjs-core';

/**
 * A faster MaxPool gradient for non-overlapping windows (pool size = stride, the usual 2×2/2): route dy
 * to the positions equal to their window's maximum, with tensor ops that are fast on wasm, instead of
 * tfjs-backend-wasm's MaxPoolGrad loop (about 15× the forward pool). Other pools keep tfjs' gradient.
 */
export function fastMaxPoolGradConfig(): GradConfig | undefined {
  const original = getGradient(MaxPool);
  if (original === undefined) return undefined;
  return {
    kernelName: MaxPool,
    inputsToSave: ['x'],
    outputsToSave: [true],
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: NamedAttrMap) => {
      const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as {
        filterSize: number | [number, number];
        strides: number | [number, number];
        pad: unknown;
        dimRoundingMode?: string;
      };
      const f = typeof filterSize === 'number' ? [filterSize, filterSize] : filterSize;
      const s = typeof strides === 'number' ? [strides, strides] : strides;
      const d = dy as tf.Tensor4D;
      const [x, y] = saved as [tf.Tensor4D, tf.Tensor4D];
      const simple = f[0] === s[0] && f[1] === s[1] && pad === 'valid' && dimRoundingMode == null;
      if (!simple) return original.gradFunc(dy, saved, attrs);
      return {
        x: () =>
          tf.tidy(() => {
            const [n, h, w, c] = x.shape;
            const [, oh, ow] = d.shape;
            // Nearest-neighbour resize by an integer factor repeats each value over its window (and is
            // fast on wasm, unlike Tile).
            const up = (t: tf.Tensor4D) => tf.image.resizeNearestNeighbor(t, [oh * f[0]!, ow * f[1]!]);
            const covered = tf.slice(x, [0, 0, 0, 0], [n, oh * f[0]!, ow * f[1]!, c]);
            const atMax = tf.cast(tf.equal(covered, up(y)), 'float32');
            const g = tf.mul(up(d), atMax);
            return tf.pad(g, [
              [0, 0],
              [0, h - oh * f[0]!],
              [0, w - ow * f[1]!],
              [0, 0],
            ]);
          }),
      };
    },
  };
}
