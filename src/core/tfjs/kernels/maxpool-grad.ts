import * as tf from '@tensorflow/tfjs-core';
import { getGradient, MaxPool, type GradConfig, type NamedAttrMap, type TensorInfo } from '@tensorflow/tfjs-core';

/**
 * A faster MaxPool gradient for non-overlapping windows (pool size = stride, the usual 2×2/2) than
 * tfjs-backend-wasm's MaxPoolGrad loop (about 15× the forward pool).
 * dy goes to the first position (row-major) equal to its window's maximum, as tfjs' reference kernel,
 * TensorFlow and PyTorch route it: on flat regions (a plain background gives a conv output equal to its
 * bias in every tap) a window has several equal maxima, and sending dy to each of them multiplies the
 * input gradient there by up to the window's size. Other pools keep tfjs' gradient.
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
      return { x: () => tf.tidy(() => firstMaxGradient(x, y, d, f as [number, number])) };
    },
  };
}

/**
 * dy routed to each window's first maximum, in one pass over the values in JS: a few times faster here than
 * any composition of wasm tensor ops that breaks ties (each op allocates and walks the whole tensor).
 */
function firstMaxGradient(x: tf.Tensor4D, y: tf.Tensor4D, dy: tf.Tensor4D, [fh, fw]: [number, number]): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const [, oh, ow] = dy.shape;
  const out = new Float32Array(x.size);
  // Read in place where the backend allows it: three copies out of the wasm heap were a twentieth of a scan.
  const [xs, ys, ds] = [x, y, dy].map(valuesOf) as [tf.TypedArray, tf.TypedArray, tf.TypedArray];
  if (fh === 2 && fw === 2) routeTwoByTwo(xs, ys, ds, out, [n, h, w, c], [oh, ow]);
  else {
    for (let b = 0; b < n; b++) {
      for (let oi = 0; oi < oh; oi++) {
        for (let oj = 0; oj < ow; oj++) {
          const cell = ((b * oh + oi) * ow + oj) * c;
          for (let ch = 0; ch < c; ch++) {
            const max = ys[cell + ch];
            search: for (let r = 0; r < fh; r++) {
              const row = ((b * h + oi * fh + r) * w + oj * fw) * c + ch;
              for (let s = 0; s < fw; s++) {
                if (xs[row + s * c] === max) {
                  out[row + s * c] = ds[cell + ch]!;
                  break search;
                }
              }
            }
          }
        }
      }
    }
  }
  return tf.tensor4d(out, x.shape);
}

/**
 * A tensor's values without a copy on the wasm backend (a view on its heap, valid until the next
 * allocation: read before any), and through dataSync elsewhere.
 */
function valuesOf(t: tf.Tensor): tf.TypedArray {
  const backend = tf.backend() as Partial<Pick<WasmHeapBackend, 'typedArrayFromHeap'>>;
  return t.dtype === 'float32' && typeof backend.typedArrayFromHeap === 'function' ? backend.typedArrayFromHeap(t) : t.dataSync();
}

/** tfjs-backend-wasm's view on a tensor's bytes in its heap. */
interface WasmHeapBackend {
  typedArrayFromHeap(info: TensorInfo): tf.TypedArray;
}

/**
 * The 2×2 pool (nearly every CNN's) unrolled: the same first-maximum order, about 1.6× faster than the
 * general loop, which took a tenth of a whole scan's time on the fixtures (measured with --cpu-prof).
 */
function routeTwoByTwo(
  xs: tf.TypedArray,
  ys: tf.TypedArray,
  ds: tf.TypedArray,
  out: Float32Array,
  [n, h, w, c]: readonly [number, number, number, number],
  [oh, ow]: readonly [number, number],
): void {
  const row = w * c;
  for (let b = 0; b < n; b++) {
    for (let oi = 0; oi < oh; oi++) {
      let cell = (b * oh + oi) * ow * c;
      let p0 = (b * h + oi * 2) * row;
      for (let oj = 0; oj < ow; oj++, cell += c, p0 += 2 * c) {
        const p1 = p0 + c;
        const p2 = p0 + row;
        const p3 = p2 + c;
        for (let ch = 0; ch < c; ch++) {
          const max = ys[cell + ch];
          const d = ds[cell + ch]!;
          if (xs[p0 + ch] === max) out[p0 + ch] = d;
          else if (xs[p1 + ch] === max) out[p1 + ch] = d;
          else if (xs[p2 + ch] === max) out[p2 + ch] = d;
          else if (xs[p3 + ch] === max) out[p3 + ch] = d;
        }
      }
    }
  }
}
