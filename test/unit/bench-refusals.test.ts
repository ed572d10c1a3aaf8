import { describe, expect, it } from 'vitest';
import { refusalKind, refusalTable, type Refusal } from '../../bench/refusals.ts';

// The refusals table says which safeguard turned a repair away and whether it was right to: a reason read
// as the wrong kind would credit one check with another's refusals.
describe('bench:refusals', () => {
  const held =
    "the repaired model failed the check on images the repair never saw: on the held-back sample, a trigger sending 11.1% of images to class 4 is still 0.79 of the smallest clean class's (at least 0.9 needed)";
  const fresh =
    "the repaired model failed the check on images the repair never saw: a trigger sending 10% of images to class 0 is still 0.41 of the smallest clean class's (at least 0.9 needed)";
  const small =
    'the sample held back 10 images for the check on real images, fewer than 3 in every class: a check on one held-back image per class certified a repair';

  it('reads the kind of refusal off the reason the scan wrote', () => {
    expect([refusalKind(held), refusalKind(fresh), refusalKind(small), refusalKind('the prune cap stopped it')]).toEqual([
      'held-back check',
      'check on fresh synthetic images',
      'sample too small',
      'other',
    ]);
  });

  it('counts per kind the candidates that kept the trigger and the repairs turned away', () => {
    const row = (reason: string, asr: number, drop: number): Refusal => ({
      model: 'm',
      half: 'tuning',
      seed: 1,
      reason,
      players: 1,
      asr,
      drop,
    });
    const table = refusalTable([row(held, 0.5, 0.1), row(held, 0.01, 0.2), row(held, 0.05, 0.9), row(fresh, 0.011, 0.0)]);
    expect(table.split('\n').slice(2)).toEqual([
      '| held-back check | 3 | 1 | 2 | 1 |',
      '| check on fresh synthetic images | 1 | 0 | 1 | 1 |',
    ]);
  });
});
