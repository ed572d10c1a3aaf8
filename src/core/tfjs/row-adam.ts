import * as tf from '@tensorflow/tfjs-core';
import { variableFrom } from './tensors.ts';

/**
 * Adam (as tfjs computes it) over variables whose first axis holds independent problems, one per row,
 * such as one trigger per candidate target. `keepRows` drops finished rows together with their moments,
 * so the rest go on exactly as before while each step costs only what is still running; tfjs' own
 * optimiser keeps its moments out of reach.
 */
export class RowAdam {
  private first: tf.Tensor[];
  private second: tf.Tensor[];
  private step = 0;

  constructor(
    private current: tf.Variable[],
    private readonly learningRate: number,
    private readonly beta1: number,
    private readonly beta2: number,
    private readonly epsilon = 1e-7,
  ) {
    this.first = current.map((v) => tf.zerosLike(v));
    this.second = current.map((v) => tf.zerosLike(v));
  }

  /** The variables now optimised (replaced by `keepRows`). */
  get vars(): tf.Variable[] {
    return this.current;
  }

  /** One Adam step from gradients named after the variables. */
  applyGradients(grads: { name: string; tensor: tf.Tensor }[]): void {
    this.step++;
    const c1 = 1 - this.beta1 ** this.step;
    const c2 = 1 - this.beta2 ** this.step;
    for (const { name, tensor: g } of grads) {
      const i = this.current.findIndex((v) => v.name === name);
      if (i < 0) continue;
      const [m, s] = tf.tidy(() => [
        tf.add(tf.mul(this.first[i]!, this.beta1), tf.mul(g, 1 - this.beta1)),
        tf.add(tf.mul(this.second[i]!, this.beta2), tf.mul(tf.square(g), 1 - this.beta2)),
      ]);
      tf.dispose([this.first[i]!, this.second[i]!]);
      this.first[i] = m!;
      this.second[i] = s!;
      const v = this.current[i]!;
      const next = tf.tidy(() =>
        tf.sub(v, tf.mul(tf.div(tf.div(m!, c1), tf.add(tf.sqrt(tf.div(s!, c2)), this.epsilon)), this.learningRate)),
      );
      v.assign(next);
      next.dispose();
    }
  }

  /** Keeps only rows `rows` (in that order) of every variable and moment; the old variables are freed. */
  keepRows(rows: number[]): void {
    const idx = tf.tensor1d(Int32Array.from(rows), 'int32');
    const pick = (t: tf.Tensor) => tf.gather(t, idx);
    const next = this.current.map((v) => variableFrom(pick(v)));
    const first = this.first.map(pick);
    const second = this.second.map(pick);
    tf.dispose([idx, ...this.current, ...this.first, ...this.second]);
    this.current = next;
    this.first = first;
    this.second = second;
  }

  dispose(): void {
    tf.dispose([...this.current, ...this.first, ...this.second]);
  }
}
