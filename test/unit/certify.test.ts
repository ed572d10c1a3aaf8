import { describe, expect, it } from 'vitest';
import { DETECT_DEFAULTS } from '../../src/core/stages/detection/detect.ts';
import { judgeResiduals, uncheckable, type ResidualTrigger } from '../../src/core/stages/verification/certify.ts';
import { wilson } from '../../src/core/util/wilson.ts';

const found = (target: number, norm: number, more: Partial<ResidualTrigger> = {}): ResidualTrigger => ({
  target,
  norm,
  reached: Number.isFinite(norm),
  finished: true,
  ...more,
});

describe('the post-repair rule', () => {
  const clean = [found(3, 20), found(5, 25), found(8, 30)];

  it('a target whose residual trigger is about as large as the smallest clean class’s is repaired', () => {
    const [f] = judgeResiduals([found(6, 19)], clean, DETECT_DEFAULTS);
    expect(f).toMatchObject({ target: 6, removed: true, reason: null });
    expect(f!.ofSmallestClean).toBeCloseTo(0.95, 12);
  });

  it('one still smaller than that is not, and the reason says by how much', () => {
    const [f] = judgeResiduals([found(6, 12)], clean, DETECT_DEFAULTS);
    expect(f!.removed).toBe(false);
    expect(f!.reason).toMatch(/class 6 is still 0\.60 of the smallest clean class's \(at least 0\.9 needed\)/);
    // The held-back check aims at a success the sample can resolve (3 of 27 images): written as a reader would.
    const [held] = judgeResiduals([found(6, 12)], clean, { ...DETECT_DEFAULTS, residualSuccess: 3 / 27 });
    expect(held!.reason).toMatch(/^a trigger sending 11\.1% of images to class 6 is still/);
  });

  it('a search that found no trigger at all, and ran to its end, is a removal', () => {
    expect(judgeResiduals([found(6, Infinity)], clean, DETECT_DEFAULTS)[0]!.removed).toBe(true);
  });

  it('a search cut by the budget proves nothing, for the target or for the clean classes beside it', () => {
    expect(judgeResiduals([found(6, 40, { finished: false })], clean, DETECT_DEFAULTS)[0]).toMatchObject({
      removed: false,
      reason: expect.stringMatching(/cut by the budget/),
    });
    expect(judgeResiduals([found(6, 40)], [...clean, found(9, 50, { finished: false })], DETECT_DEFAULTS)[0]!.removed).toBe(false);
  });

  it('compares with the smallest clean class that reached the target, per flagged target', () => {
    const out = judgeResiduals([found(1, 30), found(2, 10)], [found(3, Infinity), found(5, 25)], DETECT_DEFAULTS);
    expect(out.map((f) => f.removed)).toEqual([true, false]);
  });
});

describe('which flagged triggers a repair can be certified for', () => {
  const cls = (c: number, flagged: boolean, concentration: number) => ({ class: c, flagged, concentration });

  it('compact flagged triggers leave the repair to the check', () => {
    expect(uncheckable([cls(0, false, 0.2), cls(6, true, 0.82)], DETECT_DEFAULTS.minConcentration)).toBeNull();
  });

  it('a spread flagged trigger is named with its concentration; spread clean classes do not count', () => {
    const why = uncheckable([cls(1, true, 0.42), cls(2, false, 0.1), cls(7, true, 0.9)], 0.75);
    expect(why).toMatch(/class\(es\) 1 \(concentration 0\.42\) is spread over the image \(below 0\.75\)/);
    expect(why).not.toMatch(/\b[27] \(/);
  });

  it('a mask without mass (concentration NaN) is never taken as compact', () => {
    expect(uncheckable([cls(4, true, NaN)], 0.75)).not.toBeNull();
  });
});

describe('the held-back accuracy interval (Wilson, 95%)', () => {
  it('is honest at few-shot counts: 20 of 20 right still allows 84%, and it narrows with more images', () => {
    const [lo, hi] = wilson(1, 20);
    expect(lo).toBeCloseTo(0.8389, 3);
    expect(hi).toBe(1);
    const [lo2, hi2] = wilson(0.9, 300);
    expect(lo2).toBeCloseTo(0.8608, 3);
    expect(hi2).toBeCloseTo(0.929, 3);
    expect(wilson(0, 0)).toEqual([0, 1]);
  });
});
