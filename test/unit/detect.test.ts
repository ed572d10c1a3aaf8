import { describe, expect, it } from 'vitest';
import { comparableNorms, DETECT_DEFAULTS, detectTargets, median } from '../../src/core/stages/detection/detect.ts';

describe('MAD detection', () => {
  it('computes the median of odd and even lists', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('flags an abnormally small mask and gives the Neural Cleanse anomaly index', () => {
    const norms = [40, 42, 38, 45, 41, 39, 3, 44, 43, 40];
    const out = detectTargets(norms).classes;
    const med = median(norms);
    const mad = 1.4826 * median(norms.map((n) => Math.abs(n - med)));
    expect(out[6]!.anomalyIndex).toBeCloseTo((med - 3) / mad, 10);
    expect(out.filter((c) => c.flagged).map((c) => c.target)).toEqual([6]);
  });

  it('never flags a class whose mask is larger than the median', () => {
    const out = detectTargets([10, 11, 9, 10, 200, 10, 11, 9]).classes;
    expect(out[4]!.anomalyIndex).toBeGreaterThan(2);
    expect(out.some((c) => c.flagged)).toBe(false);
  });

  it('does not flag a tight cluster whose smallest mask is only moderately smaller (the MAD pitfall)', () => {
    // Seen on a clean MNIST CNN: anomaly indices above 2 for masks about 60% of the median.
    const out = detectTargets([26, 26.5, 25.8, 26.2, 15, 26.1, 25.9, 26.3, 20, 26]).classes;
    expect(out[4]!.anomalyIndex).toBeGreaterThan(2);
    expect(out.some((c) => c.flagged)).toBe(false);
  });

  it('flags a mid-sized mask only when it is a far stronger outlier', () => {
    // A 4×4 MNIST patch reversed to 0.26 of the median at anomaly index ≈ 12 here: flagged.
    const strong = detectTargets([50, 52, 48, 13, 51, 49, 47, 53, 50, 46]).classes;
    expect(strong[3]!.normRatio).toBeGreaterThan(0.25);
    expect(strong[3]!.anomalyIndex).toBeGreaterThan(5);
    expect(strong.filter((c) => c.flagged).map((c) => c.target)).toEqual([3]);
    // The same ratio in a spread-out set (index ≈ 2.9, like a clean glyph class): not flagged.
    const spread = detectTargets([30, 60, 40, 13.5, 70, 45, 55, 35, 65, 50, 58]).classes;
    expect(spread[3]!.normRatio).toBeGreaterThan(0.25);
    expect(spread[3]!.anomalyIndex).toBeGreaterThan(2);
    expect(spread[3]!.anomalyIndex).toBeLessThan(5);
    expect(spread.some((c) => c.flagged)).toBe(false);
    // A strong outlier above strongMaxNormRatio: not flagged.
    expect(detectTargets([50, 50.5, 49.5, 22, 50.2, 49.8, 50.1, 49.9, 50, 50.3]).classes.some((c) => c.flagged)).toBe(false);
  });

  it('handles identical norms (MAD = 0) without flagging', () => {
    expect(detectTargets([5, 5, 5, 5]).classes.some((c) => c.flagged)).toBe(false);
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
    const triggers = [t(5, 10, true), t(5.5, 11, true), t(6, 12, true), ...Array.from({ length: 20 }, (_, i) => t(20 + i, 20 + i, false))];
    const raw = detectTargets(
      triggers.map((x) => x.norm),
      { ...DETECT_DEFAULTS, anomalyThreshold: 2, maxNormRatio: 0.25 },
    ).classes;
    const fair = detectTargets(comparableNorms(triggers), { ...DETECT_DEFAULTS, anomalyThreshold: 2, maxNormRatio: 0.25 }).classes;
    expect(raw.some((c) => c.flagged)).toBe(true);
    expect(fair.some((c) => c.flagged)).toBe(false);
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
