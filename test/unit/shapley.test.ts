import { describe, expect, it } from 'vitest';
import { Budget } from '../../src/core/budget.ts';
import { estimateShapley, SHAPLEY_DEFAULTS, type CoalitionGame, type ShapleyConfig } from '../../src/core/stages/shapley/shapley.ts';
import { Rng } from '../../src/core/util/rng.ts';

/** A game with a closed-form or enumerated value, counting how many coalitions were scored. */
class CountingGame implements CoalitionGame {
  scored = 0;
  constructor(
    readonly players: number,
    private readonly v: (c: Uint8Array) => number,
  ) {}
  evaluate(coalitions: Uint8Array[]): number[] {
    this.scored += coalitions.length;
    return coalitions.map(this.v);
  }
  cost(n: number): number {
    return n;
  }
}

function factorial(n: number): number {
  return n <= 1 ? 1 : n * factorial(n - 1);
}

/** Exact Shapley values by enumerating all subsets (n ≤ 12). */
function exactShapley(n: number, v: (c: Uint8Array) => number): number[] {
  const phi = new Array<number>(n).fill(0);
  for (let mask = 0; mask < 1 << n; mask++) {
    const c = Uint8Array.from({ length: n }, (_, i) => (mask >> i) & 1);
    const size = c.reduce((a, b) => a + b, 0);
    const vs = v(c);
    for (let i = 0; i < n; i++) {
      if (c[i]) continue;
      c[i] = 1;
      phi[i]! += ((factorial(size) * factorial(n - size - 1)) / factorial(n)) * (v(c) - vs);
      c[i] = 0;
    }
  }
  return phi;
}

function topK(values: number[], k: number): number[] {
  return values
    .map((v, i) => [v, i] as const)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .slice(0, k)
    .map(([, i]) => i)
    .sort((a, b) => a - b);
}

const plain: ShapleyConfig = {
  ...SHAPLEY_DEFAULTS,
  useThreshold: false,
  useGreedy: false,
  minPermutations: 0,
  stableFor: Infinity,
  batch: 64,
};
const bigBudget = () => new Budget(1e9, Infinity).stage(1);

// A weighted majority game shaped like a backdoor: a few heavy players carry the value.
const weights = [0.45, 0.3, 0.2, 0.04, 0.03, 0.03, 0.02, 0.01, 0.01, 0.01];
const majority = (c: Uint8Array) => (weights.reduce((a, w, i) => a + (c[i] ? w : 0), 0) >= 0.5 ? 1 : 0);

describe('Shapley estimation', () => {
  it('plain permutation sampling converges to the exact values of an additive game', () => {
    const w = [0.5, -0.2, 0.1, 0.3, 0, 0.05];
    const v = (c: Uint8Array) => w.reduce((a, x, i) => a + (c[i] ? x : 0), 0);
    const est = estimateShapley(new CountingGame(w.length, v), { ...plain, maxPermutations: 50 }, new Rng(1), bigBudget());
    // Every permutation gives an additive game's exact marginals.
    est.values.forEach((x, i) => expect(x).toBeCloseTo(w[i]!, 10));
  });

  it('plain sampling converges to the enumerated values of a weighted majority game (n = 10)', () => {
    const exact = exactShapley(weights.length, majority);
    expect(exact.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 10);
    const est = estimateShapley(new CountingGame(weights.length, majority), { ...plain, maxPermutations: 4000 }, new Rng(2), bigBudget());
    est.values.forEach((x, i) => expect(Math.abs(x - exact[i]!)).toBeLessThan(0.03));
    expect(est.permutations).toBe(4000);
  });

  it('discarding threshold and ε-greedy keep the exact top-k of a backdoor-like game (values biased, order kept)', () => {
    // Backdoor strength as a smooth, monotone function of the active channels' weights (n = 10, enumerated).
    const w = [0.45, 0.3, 0.2, 0.04, 0.03, 0.03, 0.02, 0.01, 0.01, 0.01];
    const v = (c: Uint8Array) => 1 / (1 + Math.exp(-12 * (w.reduce((a, x, i) => a + (c[i] ? x : 0), 0) - 0.6)));
    const exact = exactShapley(w.length, v);
    for (const seed of [1, 2, 3, 4, 5]) {
      for (const k of [1, 2, 3]) {
        const est = estimateShapley(
          new CountingGame(w.length, v),
          { ...SHAPLEY_DEFAULTS, topK: k, cover: 1, maxPermutations: 400 },
          new Rng(seed * 10 + k),
          bigBudget(),
        );
        expect(topK(est.values, k)).toEqual(topK(exact, k));
      }
    }
  });

  it('the accelerations need several times fewer evaluations per permutation than plain sampling', () => {
    // 40 players: three carry the backdoor, the rest share a little (weighted majority, quota 0.5).
    const w = [0.3, 0.25, 0.2, ...Array<number>(37).fill(0.25 / 37)];
    const v = (c: Uint8Array) => (w.reduce((a, x, i) => a + (c[i] ? x : 0), 0) >= 0.5 ? 1 : 0);
    const cfg = { ...SHAPLEY_DEFAULTS, topK: 3, minPermutations: 100, maxPermutations: 100, stableFor: Infinity };
    const fast = new CountingGame(w.length, v);
    const estFast = estimateShapley(fast, cfg, new Rng(8), bigBudget());
    const slow = new CountingGame(w.length, v);
    const estSlow = estimateShapley(slow, { ...plain, maxPermutations: 100 }, new Rng(8), bigBudget());
    expect(topK(estFast.values, 3)).toEqual([0, 1, 2]);
    expect(topK(estSlow.values, 3)).toEqual([0, 1, 2]);
    expect(fast.scored * 5).toBeLessThan(slow.scored);
  });

  it('a first-order prior orders the first greedy walks, and its cost is counted', () => {
    // 40 players, one carries the backdoor: a greedy walk that starts with it ends after one coalition.
    const w = [0.6, ...Array<number>(39).fill(0.4 / 39)];
    const v = (c: Uint8Array) => (w.reduce((a, x, i) => a + (c[i] ? x : 0), 0) >= 0.5 ? 1 : 0);
    const noisy = w.map((x, i) => x + 0.01 * Math.sin(i));
    class PriorGame extends CountingGame {
      firstOrder() {
        return { values: noisy, cost: 3 };
      }
    }
    const cfg = { ...SHAPLEY_DEFAULTS, minPermutations: 0, maxPermutations: 8 };
    const withPrior = new PriorGame(w.length, v);
    const est = estimateShapley(withPrior, cfg, new Rng(3), bigBudget());
    expect(est.permutations).toBe(8);
    expect(topK(est.values, 1)).toEqual([0]);
    // The full set, then one pass of a greedy walk's first two steps: every walk of the group alike.
    expect(withPrior.scored).toBe(3);
    expect(est.evaluations).toBe(withPrior.scored + 3);
    // Without the prior the first walk is a random one: it meets player 0 only after about half the rest.
    const without = new CountingGame(w.length, v);
    estimateShapley(without, { ...cfg, maxPermutations: 1 }, new Rng(3), bigBudget());
    expect(without.scored).toBeGreaterThan(withPrior.scored);
  });

  it('converges on the few players holding most of the value, not on the order of the noise-level rest', () => {
    // One player carries the backdoor; 19 share a little, and their order never settles.
    const w = [0.7, ...Array<number>(19).fill(0.3 / 19)];
    const v = (c: Uint8Array) => 1 / (1 + Math.exp(-20 * (w.reduce((a, x, i) => a + (c[i] ? x : 0), 0) - 0.5)));
    let covered = 0;
    let plainTopK = 0;
    for (const seed of [1, 2, 3, 4, 5]) {
      const cfg = { ...SHAPLEY_DEFAULTS, maxPermutations: 1000 };
      const a = estimateShapley(new CountingGame(w.length, v), cfg, new Rng(seed), bigBudget());
      const b = estimateShapley(new CountingGame(w.length, v), { ...cfg, cover: 1 }, new Rng(seed), bigBudget());
      expect(a.stoppedBy).toBe('converged');
      expect(topK(a.values, 1)).toEqual([0]);
      expect(a.permutations).toBeLessThanOrEqual(b.permutations);
      covered += a.permutations;
      plainTopK += b.permutations;
    }
    expect(covered * 2).toBeLessThan(plainTopK);
  });

  it('stops at the evaluation budget and says so', () => {
    const game = new CountingGame(weights.length, majority);
    const stage = new Budget(1e9, 200).stage(1);
    const est = estimateShapley(game, { ...plain, maxPermutations: 10_000 }, new Rng(4), stage);
    expect(est.stoppedBy).toBe('evaluations');
    expect(est.converged).toBe(false);
    expect(game.scored).toBeLessThanOrEqual(200);
    expect(est.evaluations).toBe(game.scored);
  });

  it('stops at the wall-clock deadline and says so', () => {
    let now = 0;
    const budget = new Budget(1, Infinity, () => now);
    const stage = budget.stage(1);
    const game = new CountingGame(weights.length, (c) => {
      now += 10; // every evaluation takes 10 ms of fake time
      return majority(c);
    });
    const est = estimateShapley(game, { ...plain, maxPermutations: 10_000 }, new Rng(5), stage);
    expect(est.stoppedBy).toBe('time');
    expect(now).toBeLessThan(1000 + 64 * 10 + 10);
  });

  it('reports convergence once the top-k is stable', () => {
    const est = estimateShapley(new CountingGame(weights.length, majority), { ...SHAPLEY_DEFAULTS, topK: 2 }, new Rng(6), bigBudget());
    expect(est.converged).toBe(true);
    expect(est.stoppedBy).toBe('converged');
  });

  it('is reproducible for the same seed', () => {
    const run = () => estimateShapley(new CountingGame(weights.length, majority), SHAPLEY_DEFAULTS, new Rng(7), bigBudget()).values;
    expect(run()).toEqual(run());
  });
});
