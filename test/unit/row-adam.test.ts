import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initWasmBackend } from '../../src/core/tfjs/backend.ts';
import { RowAdam } from '../../src/core/tfjs/row-adam.ts';
import { nodeWasmPath } from '../../src/node/wasm-path.ts';

beforeAll(async () => {
  await initWasmBackend({ wasmPath: nodeWasmPath() });
});

// Three independent rows, each pulled towards its own point through a non-linear loss.
const goal = [
  [1, -2, 0.5],
  [-1, 3, 2],
  [0.2, 0.1, -4],
];
const start = () => tf.variable(tf.tensor2d([0.3, -0.1, 0.2, 1, 0, -1, 2, 2, 2], [3, 3]));
const lossOf = (v: tf.Variable, rows: number[]) => () =>
  tf.sum(
    tf.log1p(
      tf.square(
        tf.sub(
          v,
          tf.tensor2d(
            rows.flatMap((r) => goal[r]!),
            [rows.length, 3],
          ),
        ),
      ),
    ),
  ) as tf.Scalar;
const step = (opt: Pick<tf.Optimizer, 'applyGradients'>, v: tf.Variable, rows: number[]) => {
  const { value, grads } = tf.variableGrads(lossOf(v, rows), [v]);
  opt.applyGradients([{ name: v.name, tensor: grads[v.name]! }]);
  tf.dispose([value, grads[v.name]!]);
};

describe('RowAdam', () => {
  it('takes the steps of tfjs Adam', () => {
    const a = start();
    const b = start();
    const ours = new RowAdam([a], 0.1, 0.5, 0.9);
    const theirs = tf.train.adam(0.1, 0.5, 0.9);
    for (let i = 0; i < 20; i++) {
      step(ours, ours.vars[0]!, [0, 1, 2]);
      step(theirs, b, [0, 1, 2]);
    }
    const x = Array.from(ours.vars[0]!.dataSync());
    const y = Array.from(b.dataSync());
    x.forEach((v, i) => expect(v).toBeCloseTo(y[i]!, 5));
    // The run moved the variables, so agreeing means something.
    expect(Math.abs(x[0]! - 0.3)).toBeGreaterThan(0.5);
    ours.dispose();
    theirs.dispose();
    b.dispose();
  });

  it('dropping finished rows leaves the trajectories of the others unchanged', () => {
    const all = new RowAdam([start()], 0.1, 0.5, 0.9);
    const dropping = new RowAdam([start()], 0.1, 0.5, 0.9);
    let rows = [0, 1, 2];
    for (let i = 0; i < 15; i++) {
      step(all, all.vars[0]!, [0, 1, 2]);
      step(dropping, dropping.vars[0]!, rows);
      if (i === 4) {
        dropping.keepRows([2, 0]);
        rows = [2, 0];
      }
    }
    const full = all.vars[0]!.arraySync() as number[][];
    const kept = dropping.vars[0]!.arraySync() as number[][];
    expect(kept).toHaveLength(2);
    kept[0]!.forEach((v, j) => expect(v).toBeCloseTo(full[2]![j]!, 6));
    kept[1]!.forEach((v, j) => expect(v).toBeCloseTo(full[0]![j]!, 6));
    all.dispose();
    dropping.dispose();
  });
});
