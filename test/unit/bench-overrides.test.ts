import { describe, expect, it } from 'vitest';
import { cliArg, parseOverrides, sampleSplit } from '../../bench/zoo.ts';
import { probeRuns, tally } from '../../bench/detection-rules.ts';
import type { ProbeRow } from '../../bench/detection-probe.ts';

// A tuning run measures what its --set says only if every setting reaches the engine as the kind it reads.
describe('bench --set', () => {
  it('gives a list setting a list, one value or several, and a number setting a number', () => {
    expect(parseOverrides('synthesis.starts=-2.5,detection.maxGap=0.6')).toEqual({
      synthesis: { starts: [-2.5] },
      detection: { maxGap: 0.6 },
    });
    expect(parseOverrides('synthesis.starts=-2.5/0/2.5')).toEqual({ synthesis: { starts: [-2.5, 0, 2.5] } });
    expect(parseOverrides(undefined)).toEqual({});
  });

  it('gives a switch a boolean, and refuses true or false for a number', () => {
    expect(parseOverrides('pruning.refineCells=false,pruning.maxAsr=0.1')).toEqual({ pruning: { refineCells: false, maxAsr: 0.1 } });
    expect(() => parseOverrides('pruning.maxAsr=true')).toThrow(/expected stage\.key=number/);
  });

  it('refuses an unknown setting, a list for a number, and a value that is not a number', () => {
    expect(() => parseOverrides('detection.maxGapp=0.6')).toThrow(/detection\.maxGapp=0\.6: expected .* known setting/);
    expect(() => parseOverrides('detection.maxGap=0.5/0.6')).toThrow(/detection\.maxGap takes one number/);
    expect(() => parseOverrides('detection.maxGap=abc')).toThrow(/expected stage\.key=number/);
    expect(() => parseOverrides('repair.maxGap=1')).toThrow(/expected stage\.key=number/);
  });
});

// Thresholds chosen offline (bench:rules) hold for the scan only if the sweep applies the scan's own rule.
describe('bench:rules', () => {
  const row = (model: string, planted: number | null, norms: number[]) =>
    ({ model, seed: 1, half: 'tuning', planted, startNorms: [norms] }) as unknown as ProbeRow;
  const runs = probeRuns([
    row('planted-small', 2, [10, 10, 2, 10, 9, 11, 10, 12, 10, 10]),
    row('planted-small', 2, [10, 10, 2, 10, 9, 11, 10, 12, 10, 10]),
    row('planted-borderline', 0, [3.2, 10, 10, 10, 9, 11, 6.5, 12, 10, 10]),
    row('clean-small-class', null, [10, 10, 10, 2.8, 9, 11, 10, 12, 10, 10]),
  ]);

  it('keeps one run per model and seed, and counts a bound as the scan applies it', () => {
    expect(runs.map((r) => r.model)).toEqual(['planted-small', 'planted-borderline', 'clean-small-class']);
    // 0.2 of the median flags the planted class; the borderline one (0.32, 0.49 of the next) and the clean
    // model's small class (0.28) only once the size bound passes them.
    expect(tally(runs, 0.25, 0.5)).toMatchObject({ planted: 2, hit: 1, wrong: 0, clean: 1, cleanFlagged: 0 });
    expect(tally(runs, 0.3, 0.5)).toMatchObject({ hit: 1, cleanFlagged: 1, falsePositives: ['clean-small-class/s1'] });
    expect(tally(runs, 0.35, 0.5)).toMatchObject({ hit: 2, cleanFlagged: 1 });
    expect(tally(runs, 0.35, 0.4)).toMatchObject({ hit: 1, cleanFlagged: 1 });
  });
});

// A bench run measures what its command line says only if no flag is dropped or misread.
describe('bench flags', () => {
  it('reads a flag once, and refuses it given twice rather than drop one', () => {
    expect(cliArg('seeds', ['node', 'zoo.ts', '--seeds', '1,2'])).toBe('1,2');
    expect(cliArg('half', ['node', 'zoo.ts', '--seeds', '1,2'])).toBeUndefined();
    expect(() => cliArg('set', ['node', 'zoo.ts', '--set', 'a.b=1', '--set', 'c.d=2'])).toThrow(/--set is given twice/);
  });

  it('takes train or test as the sample split, test when absent, and refuses anything else', () => {
    expect(sampleSplit(undefined)).toBe('test');
    expect(sampleSplit('train')).toBe('train');
    expect(() => sampleSplit('training')).toThrow(/--sample-split training: expected train or test/);
  });
});
