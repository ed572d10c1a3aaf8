import * as tf from '@tensorflow/tfjs-core';

/**
 * Tensor lifetime helpers. A scan runs many times in one long-lived process (the Node server's scan
 * thread, a Worker isolate), so every tensor it makes must be freed; these cover the two easy-to-miss cases.
 */

/** The tensor's values; the tensor is disposed. */
export function readAndDispose(t: tf.Tensor): Float32Array | Int32Array | Uint8Array {
  const values = t.dataSync() as Float32Array | Int32Array | Uint8Array;
  t.dispose();
  return values;
}

/** A variable holding `initial`'s values; `initial` is disposed (the variable keeps the data alive). */
export function variableFrom(initial: tf.Tensor): tf.Variable {
  const v = tf.variable(initial);
  initial.dispose();
  return v;
}
