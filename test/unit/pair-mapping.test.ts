import { describe, expect, it } from 'vitest';
import { ALL_TO_ALL_DEFAULTS, cheapestMapping, minCostAssignment, universalTarget } from '../../src/core/stages/detection/pairs.ts';
import { Rng } from '../../src/core/util/rng.ts';

/** Every permutation of 0..n-1: the brute force the solver is checked against. */
function permutations(n: number): number[][] {
  if (n === 0) return [[]];
  return permutations(n - 1).flatMap((p) => Array.from({ length: n }, (_, i) => [...p.slice(0, i), n - 1, ...p.slice(i)]));
}

const total = (cost: number[][], perm: number[]) => perm.reduce((s, t, i) => s + cost[i]![t]!, 0);

describe('minimum-cost assignment (Hungarian method)', () => {
  it('finds the optimum brute force finds, on random matrices of sizes 1 to 7', () => {
    const rng = new Rng(3);
    for (let n = 1; n <= 7; n++) {
      const all = permutations(n);
      for (let trial = 0; trial < 20; trial++) {
        const cost = Array.from({ length: n }, () => Array.from({ length: n }, () => rng.next() * 10 - 5));
        const perm = minCostAssignment(cost);
        expect([...perm].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
        const best = Math.min(...all.map((p) => total(cost, p)));
        expect(total(cost, perm)).toBeCloseTo(best, 9);
      }
    }
  });

  it('never takes an infinite entry while a finite assignment exists', () => {
    const rng = new Rng(5);
    for (let trial = 0; trial < 30; trial++) {
      const n = 6;
      const cost = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? Infinity : rng.next())));
      const perm = minCostAssignment(cost);
      perm.forEach((t, s) => expect(t).not.toBe(s));
      const best = Math.min(...permutations(n).map((p) => total(cost, p)));
      expect(total(cost, perm)).toBeCloseTo(best, 9);
    }
  });
});

describe('cheapest mapping of pair triggers', () => {
  // Pair norms around 40 with a little spread: a clean model's pairs.
  const base = (K: number, rng: Rng) =>
    Array.from({ length: K }, (_, s) => Array.from({ length: K }, (_, t) => (s === t ? NaN : 30 + 20 * rng.next())));

  it('recovers a planted permutation of cheap pairs and scores it far below the row medians', () => {
    const norms = base(10, new Rng(1));
    const planted = [3, 7, 0, 9, 1, 2, 8, 4, 6, 5];
    planted.forEach((t, s) => (norms[s]![t] = 2 + s / 10));
    const got = cheapestMapping(norms);
    expect(got.mapping).toEqual(planted);
    expect(got.meanLogRatio).toBeLessThan(Math.log(0.1));
  });

  it('scores one naturally easy target, cheap from every source, no better than the spread of a clean model', () => {
    // All sources reach class 4 cheaply: one of them may use it, the others must pay their row's price.
    const easy = base(10, new Rng(2));
    for (let s = 0; s < 10; s++) if (s !== 4) easy[s]![4] = 3;
    const plain = cheapestMapping(base(10, new Rng(2)));
    const withEasy = cheapestMapping(easy);
    expect(withEasy.mapping.filter((t) => t === 4)).toHaveLength(1);
    expect(withEasy.meanLogRatio).toBeGreaterThan(plain.meanLogRatio - Math.log(50 / 3) / 10 - 1e-9);
  });

  it('ranks a pair that never reached success above every reached one', () => {
    const norms = [
      [NaN, Infinity, 5],
      [5, NaN, Infinity],
      [Infinity, 5, NaN],
    ];
    expect(cheapestMapping(norms).mapping).toEqual([2, 0, 1]);
  });
});

describe('the universality rule (universalTarget)', () => {
  const cfg = ALL_TO_ALL_DEFAULTS;

  it('flags the class whose pair triggers carry furthest, when it clears both bounds', () => {
    expect(cfg).toMatchObject({ minUniversal: 0.15, universalRatio: 5 });
    expect(universalTarget([0, 0.02, 0.3, 0.05, 0], cfg)).toBe(2);
    // Nothing else carries at all: any share over the floor stands out.
    expect(universalTarget([0, 0, 0.15, 0], cfg)).toBe(2);
  });

  it('flags nothing under the floor, however far above the rest', () => {
    expect(universalTarget([0, 0.14, 0, 0], cfg)).toBeNull();
  });

  it('flags nothing when the next class carries a fifth as far or more: an easy class is not a planted one', () => {
    // The clean Fashion GAP model's kind: high shares, but two classes close together.
    expect(universalTarget([0.74, 0.3, 0.1, 0], cfg)).toBeNull();
    expect(universalTarget([0.5, 0.1, 0], cfg)).toBe(0);
    expect(universalTarget([0.5, 0.1000001, 0], cfg)).toBeNull();
    // The tuning half's one clean run over the floor at 4.0 times its next class.
    expect(universalTarget([0.1875, 0.046875], cfg)).toBeNull();
  });

  it('reads an unmeasured class as carrying nothing, and ties to the lower class', () => {
    expect(universalTarget([NaN, 0.3, NaN, 0.01], cfg)).toBe(1);
    expect(universalTarget([NaN, NaN], cfg)).toBeNull();
    expect(universalTarget([0.3, 0.3], { minUniversal: 0.15, universalRatio: 1 })).toBe(0);
  });
});
