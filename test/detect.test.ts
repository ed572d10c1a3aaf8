import { describe, expect, it } from 'vitest';
import { detectTargets, median } from '../src/core/detect.ts';

describe('MAD detection', () => {
  it('computes the median of odd and even lists', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('flags an abnormally small mask and gives the Neural Cleanse anomaly index', () => {
    const norms = [40, 42, 38, 45, 41, 39, 3, 44, 43, 40];
    const out = detectTargets(norms);
    const med = median(norms);
    const mad = 1.4826 * median(norms.map((n) => Math.abs(n - med)));
    expect(out[6]!.anomalyIndex).toBeCloseTo((med - 3) / mad, 10);
    expect(out.filter((c) => c.flagged).map((c) => c.target)).toEqual([6]);
  });

  it('never flags a class whose mask is larger than the median', () => {
    const out = detectTargets([10, 11, 9, 10, 200, 10, 11, 9]);
    expect(out[4]!.anomalyIndex).toBeGreaterThan(2);
    expect(out.some((c) => c.flagged)).toBe(false);
  });

  it('does not flag a tight cluster whose smallest mask is only moderately smaller (the MAD pitfall)', () => {
    // Seen on a clean MNIST CNN: anomaly indices above 2 for masks about 60% of the median.
    const out = detectTargets([26, 26.5, 25.8, 26.2, 15, 26.1, 25.9, 26.3, 20, 26]);
    expect(out[4]!.anomalyIndex).toBeGreaterThan(2);
    expect(out.some((c) => c.flagged)).toBe(false);
  });

  it('handles identical norms (MAD = 0) without flagging', () => {
    expect(detectTargets([5, 5, 5, 5]).some((c) => c.flagged)).toBe(false);
  });
});
