import * as tf from '@tensorflow/tfjs-core';

/**
 * One optimiser step on a loss that is a sum over groups of rows, computed a group at a time: each
 * group's gradient is taken on its own and the sum applied once, which is exactly the whole-batch step
 * while only one group's activations are alive, so a batch bigger than the memory budget still fits.
 * `loss(start, size)` builds the loss of rows [start, start + size).
 */
export function groupedStep(
  opt: Pick<tf.Optimizer, 'applyGradients'>,
  vars: tf.Variable[],
  rows: number,
  groupSize: number,
  loss: (start: number, size: number) => tf.Scalar,
): void {
  const sums = new Map<string, tf.Tensor>();
  const group = Math.max(1, Math.min(rows, Math.floor(groupSize)));
  for (let start = 0; start < rows; start += group) {
    const { value, grads } = tf.variableGrads(() => loss(start, Math.min(group, rows - start)), vars);
    value.dispose();
    for (const v of vars) {
      const g = grads[v.name]!;
      const prev = sums.get(v.name);
      sums.set(v.name, prev ? tf.add(prev, g) : g);
      if (prev) tf.dispose([prev, g]);
    }
  }
  opt.applyGradients([...sums].map(([name, tensor]) => ({ name, tensor })));
  tf.dispose([...sums.values()]);
}
