import { describe, expect, it } from 'vitest';
import { parseOverrides } from '../../bench/zoo.ts';

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

  it('refuses an unknown setting, a list for a number, and a value that is not a number', () => {
    expect(() => parseOverrides('detection.maxGapp=0.6')).toThrow(/detection\.maxGapp=0\.6: expected .* known setting/);
    expect(() => parseOverrides('detection.maxGap=0.5/0.6')).toThrow(/detection\.maxGap takes one number/);
    expect(() => parseOverrides('detection.maxGap=abc')).toThrow(/expected stage\.key=number/);
    expect(() => parseOverrides('repair.maxGap=1')).toThrow(/expected stage\.key=number/);
  });
});
