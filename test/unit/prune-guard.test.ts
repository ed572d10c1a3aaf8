import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { Budget } from '../../src/core/budget.ts';
import type { PlayerSet } from '../../src/core/stages/players.ts';
import { choosePrune, PRUNE_DEFAULTS, type TargetProbe } from '../../src/core/stages/repair/prune.ts';
import type { TailEvaluator } from '../../src/core/stages/shapley/backdoor-game.ts';
import { initWasmBackend } from '../../src/core/tfjs/backend.ts';
import { nodeWasmPath } from '../../src/node/wasm-path.ts';

// A fake tail (unit tier): each coalition's class probabilities are a function of how many players it prunes,
// so the guard's arithmetic is tested apart from any model. The real pruning runs in the e2e tests.
const K = 3;
const ROWS = 4;
const PLAYERS = 20;

function fakeTail(row: (pruned: number, r: number) => number[]): TailEvaluator {
  const tail = {
    rows: ROWS,
    cost: (n: number) => n * ROWS,
    probabilities: (coalitions: Uint8Array[]) =>
      tf.tensor2d(
        coalitions.flatMap((c) => {
          const pruned = c.reduce((n, v) => n + (v === 0 ? 1 : 0), 0);
          return Array.from({ length: ROWS }, (_, r) => row(pruned, r));
        }),
        [coalitions.length * ROWS, K],
      ),
  };
  return tail as unknown as TailEvaluator;
}

const players = { size: PLAYERS, baseSize: PLAYERS, unitsOf: () => 1 } as unknown as PlayerSet;
// The backdoor (target 2) is gone once one player is pruned.
const probe = (): TargetProbe => ({
  target: 2,
  order: Array.from({ length: PLAYERS }, (_, k) => k),
  values: Array.from({ length: PLAYERS }, (_, k) => (k === 0 ? 1 : 0)),
  fullValue: 1,
  stamped: fakeTail((pruned) => (pruned === 0 ? [0, 0, 1] : [1, 0, 0])),
});
// Every clean row stays its class (agreement 100%) while that class's probability falls by `step` a player.
const clean = (step: number) =>
  fakeTail((pruned, r) => (r % 2 === 0 ? [0.9 - step * pruned, 0.1 + step * pruned, 0] : [0.1 + step * pruned, 0.9 - step * pruned, 0]));

describe('the accuracy guard', () => {
  beforeAll(async () => {
    await initWasmBackend({ wasmPath: nodeWasmPath() });
  });

  it('passes a prune that lowers the original class’s probability by less than the bound', () => {
    const out = choosePrune(players, [probe()], clean(0.02), PRUNE_DEFAULTS, new Budget(1e9, Infinity).stage(1));
    expect(out.status).toBe('repaired');
    expect(out.pruned).toEqual([0]);
    expect(out.curve[1]!.probabilityDrop).toBeCloseTo(0.02, 6);
    expect(out.curve[1]!.agreement).toBe(1);
  });

  it('refuses one that lowers it by more, though no clean prediction changes', () => {
    const out = choosePrune(players, [probe()], clean(0.05), PRUNE_DEFAULTS, new Budget(1e9, Infinity).stage(1));
    expect(out.status).toBe('not-repaired');
    expect(out.pruned).toEqual([]);
    expect(out.curve[1]!.agreement).toBe(1);
    expect(out.curve[1]!.probabilityDrop).toBeCloseTo(0.05, 6);
    expect(out.reason).toMatch(/accuracy guard stopped it: .* by more than 0\.03 on average/);
  });

  it('counts only drops: a class growing more confident is no credit against another row’s loss', () => {
    // Row 0 loses 0.1; row 1 gains 0.1: the mean drop is 0.1 / 4 rows, not 0.
    const mixed = fakeTail((pruned, r) =>
      r === 0
        ? [0.9 - 0.1 * Math.min(pruned, 1), 0.1 + 0.1 * Math.min(pruned, 1), 0]
        : r === 1
          ? [0.3, 0.6 + 0.1 * Math.min(pruned, 1), 0.1 - 0.1 * Math.min(pruned, 1)]
          : [0.2, 0.8, 0],
    );
    const out = choosePrune(players, [probe()], mixed, PRUNE_DEFAULTS, new Budget(1e9, Infinity).stage(1));
    expect(out.curve[1]!.probabilityDrop).toBeCloseTo(0.1 / ROWS, 6);
  });
});
