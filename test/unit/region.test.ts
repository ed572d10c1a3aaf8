import { describe, expect, it } from 'vitest';
import { triggerRegion } from '../../src/core/stages/verification/region.ts';

const grid = (region: Float32Array, w: number) =>
  Array.from({ length: region.length / w }, (_, i) => Array.from(region.subarray(i * w, (i + 1) * w)).join('')).join('\n');

describe('the region a reversed mask marks', () => {
  it('keeps the pixels at the threshold share of the peak or more, widened on every side and clipped at the border', () => {
    const mask = new Float32Array(6 * 6);
    mask[0] = 0.8; // the peak, in the corner
    mask[3 * 6 + 3] = 0.3; // above 0.3 × 0.8: kept
    mask[5 * 6 + 0] = 0.2; // below it: left out
    expect(grid(triggerRegion(mask, 6, 6, { threshold: 0.3, dilate: 1 }), 6)).toBe(
      ['110000', '110000', '001110', '001110', '001110', '000000'].join('\n'),
    );
  });

  it('is the core alone without widening, and empty for a mask with no weight', () => {
    const mask = new Float32Array(4 * 4);
    mask[5] = 1;
    expect(grid(triggerRegion(mask, 4, 4, { threshold: 0.3, dilate: 0 }), 4)).toBe(['0000', '0100', '0000', '0000'].join('\n'));
    expect(triggerRegion(new Float32Array(16), 4, 4, { threshold: 0.3, dilate: 2 }).every((v) => v === 0)).toBe(true);
  });
});
