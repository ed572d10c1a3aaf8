import { describe, expect, it } from 'vitest';
import { concentration } from '../../src/core/stages/detection/concentration.ts';
import {
  combinedNorms,
  comparableNorms,
  DETECT_DEFAULTS,
  detectTargets,
  median,
  medianShares,
} from '../../src/core/stages/detection/detect.ts';

describe('gap detection', () => {
  const flaggedOf = (norms: number[], cfg = DETECT_DEFAULTS) =>
    detectTargets(norms, cfg)
      .classes.filter((c) => c.flagged)
      .map((c) => c.target);

  it('computes the median of odd and even lists', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('flags a class whose mask is small and far smaller than the next class’s', () => {
    const norms = [40, 42, 38, 45, 41, 39, 3, 44, 43, 40];
    const d = detectTargets(norms);
    expect(d.classes[6]!.gap).toBeCloseTo(3 / 38, 12);
    expect(d.classes[6]!.normRatio).toBeCloseTo(3 / 40.5, 12);
    expect(flaggedOf(norms)).toEqual([6]);
  });

  it('flags a clear outlier among widely spread clean classes, which the MAD index misses', () => {
    // Measured: a 5×5 patch at 0.21 of the median, the next class at 0.49, anomaly index 1.4.
    const norms = [1.45, 1.02, 8.29, 0.71, 1.25, 8.25, 0.98, 0.71, 0.49, 0.21];
    const d = detectTargets(norms);
    expect(d.classes[9]!.anomalyIndex).toBeLessThan(2);
    expect(flaggedOf(norms)).toEqual([9]);
  });

  it('does not flag a naturally small class that is not far below the next one', () => {
    // Measured on a clean MNIST CNN: its smallest class at 0.41 of the median, the next at 0.72.
    expect(flaggedOf([0.41, 0.72, 0.8, 0.9, 1, 1.05, 1.1, 1.2, 1.3, 1.5])).toEqual([]);
    // Nor one far below the next, but not small: at 0.45 of the median.
    expect(flaggedOf([0.45, 0.95, 1, 1, 1, 1, 1.1, 1.2, 1.3, 1.4])).toEqual([]);
  });

  it('flags every class of a small lowest group, and no more than one per ten classes', () => {
    const rest = Array.from({ length: 17 }, (_, i) => 0.9 + i / 20);
    // Two planted targets below a gap among twenty classes: both flagged.
    expect(flaggedOf([0.05, 0.06, 0.8, ...rest])).toEqual([0, 1]);
    // Among ten, two small classes together are what global-average-pooling heads give clean models: none.
    expect(flaggedOf([0.09, 0.12, 0.87, 1, 1, 1, 1.1, 1.2, 1.3, 1.4])).toEqual([]);
    expect(flaggedOf([0.09, 0.12, 0.87, 1, 1, 1, 1.1, 1.2, 1.3, 1.4], { ...DETECT_DEFAULTS, maxTargetShare: 0.2 })).toEqual([0, 1]);
  });

  it('does not flag a class far below the next that is not small enough to tell from a natural one', () => {
    // Measured on a genuine Fashion-MNIST CNN: its "bag" at 0.30 of the median, 0.43 of the next class.
    expect(flaggedOf([0.3, 0.7, 0.9, 0.95, 1, 1, 1.1, 1.2, 1.3, 1.4])).toEqual([]);
  });

  it('flags only the smallest when the next small class is itself far from the rest', () => {
    // A planted target at 0.01 and a clean class at 0.11: the first gap is the backdoor's.
    expect(flaggedOf([0.11, 1.13, 1.02, 1.03, 0.94, 1.27, 1.11, 0.98, 0.01, 0.96])).toEqual([8]);
  });

  it('handles identical norms without flagging', () => {
    expect(flaggedOf([5, 5, 5, 5])).toEqual([]);
    expect(detectTargets([5, 5, 5, 5]).classes.every((c) => c.anomalyIndex === 0)).toBe(true);
  });
});

describe('comparable norms after screen-then-refine', () => {
  const t = (norm: number, screenNorm: number | null, refined: boolean) => ({ norm, screenNorm, refined });

  it('leaves single-phase norms as they are', () => {
    expect(comparableNorms([t(10, null, false), t(3, null, false)])).toEqual([10, 3]);
  });

  it('credits screened-only classes with the refined classes’ median shrink', () => {
    // Refined: 8→4 (0.5), 10→6 (0.6), 9→1 (0.11, the target); median shrink 0.5.
    const out = comparableNorms([t(4, 8, true), t(6, 10, true), t(1, 9, true), t(20, 20, false), t(30, 30, false)]);
    expect(out).toEqual([4, 6, 1, 10, 15]);
  });

  it('removes the bias that flags a merely-refined clean class', () => {
    // Refinement shrinks every refined mask by about half; raw, the refined clean classes look small.
    const triggers = [t(3, 10, true), t(3.3, 11, true), ...Array.from({ length: 21 }, (_, i) => t(20 + i, 20 + i, false))];
    const raw = detectTargets(triggers.map((x) => x.norm)).classes;
    const fair = detectTargets(comparableNorms(triggers)).classes;
    expect(raw.some((c) => c.flagged)).toBe(true);
    expect(fair.some((c) => c.flagged)).toBe(false);
  });
});

describe('norms weighed over several synthesis starts', () => {
  it('leaves one start’s norms as they are', () => {
    expect(combinedNorms([[3, 1, Infinity]])).toEqual([3, 1, Infinity]);
  });

  it('averages each class’s share of its start’s median, whatever the starts’ scales', () => {
    // The second start's masks are all ten times smaller: the shares, and so the combination, are the same.
    const grey = [20, 22, 18, 24, 4, 21];
    const dark = grey.map((n) => n / 10);
    const m = median(grey);
    combinedNorms([grey, dark]).forEach((r, i) => expect(r).toBeCloseTo(grey[i]! / m, 12));
  });

  it('keeps a class small only as far as it is small from both starts', () => {
    // Class 4 is small from both starts (a planted target); class 1 only from the first (a natural one).
    const first = [20, 5, 21, 19, 4, 22, 20, 18, 23, 21];
    const second = [2.0, 2.1, 1.9, 2.2, 0.5, 2.0, 2.1, 1.8, 2.3, 2.0];
    const flaggedFrom = (norms: number[]) =>
      detectTargets(norms)
        .classes.filter((c) => c.flagged)
        .map((c) => c.target);
    expect(flaggedFrom(first)).toEqual([]); // 4 and 5: no gap between the two smallest
    expect(flaggedFrom(combinedNorms([first, second]))).toEqual([4]);
  });

  it('puts a class without a finite norm at the start’s largest, and skips a start with none', () => {
    expect(medianShares([2, Infinity, 4, 1])).toEqual([2 / 3, 4 / 3, 4 / 3, 1 / 3]);
    expect(
      combinedNorms([
        [2, 4, 1],
        [Infinity, Infinity, Infinity],
      ]),
    ).toEqual([1, 2, 0.5]);
    expect(
      combinedNorms([
        [NaN, NaN],
        [Infinity, Infinity],
      ]),
    ).toEqual([Infinity, Infinity]);
  });
});

describe('the detection reports the median and MAD it measured against', () => {
  it('gives the median and 1.4826 × MAD of the norms', () => {
    const d = detectTargets([1, 2, 3, 4, 100]);
    expect(d.median).toBe(3);
    expect(d.mad).toBeCloseTo(1.4826 * 1, 12);
  });

  it('has no median when no class has a finite norm, and flags nothing', () => {
    const d = detectTargets([Infinity, Infinity, Infinity]);
    expect(d.median).toBeNaN();
    expect(d.mad).toBeNaN();
    expect(d.classes.some((c) => c.flagged)).toBe(false);
  });
});

describe('a mask’s concentration', () => {
  const mask = (h: number, w: number, on: (y: number, x: number) => number) =>
    Float32Array.from({ length: h * w }, (_, i) => on(Math.floor(i / w), i % w));

  it('a solid 3×3 patch in a corner is fully inside its window', () => {
    expect(
      concentration(
        mask(28, 28, (y, x) => (y >= 25 && x >= 25 ? 1 : 0)),
        28,
        28,
      ),
    ).toBe(1);
  });

  it('the same mass spread evenly over the image is not', () => {
    const c = concentration(
      mask(28, 28, () => 9 / 784),
      28,
      28,
    );
    // A 5×5 window (side ⌈√18⌉) holds 25 of 784 pixels' worth.
    expect(c).toBeCloseTo(25 / 784, 6);
  });

  it('two patches far apart count as half compact', () => {
    const two = mask(28, 28, (y, x) => ((y < 3 && x < 3) || (y >= 25 && x >= 25) ? 1 : 0));
    expect(concentration(two, 28, 28)).toBeCloseTo(0.5, 6);
  });

  it('an empty mask has concentration 0', () => {
    expect(concentration(new Float32Array(16), 4, 4)).toBe(0);
  });
});
