import { describe, expect, it } from 'vitest';
import { classDef, GLYPH_CLASSES, loadGlyphs } from '../data/glyphs.ts';

describe('generated sign glyphs', () => {
  it('gives every one of the 43 classes a distinct (shape, colours, symbol)', () => {
    const keys = new Set(Array.from({ length: GLYPH_CLASSES }, (_, k) => JSON.stringify(classDef(k))));
    expect(keys.size).toBe(GLYPH_CLASSES);
  });

  it('is deterministic and balanced', () => {
    const a = loadGlyphs('test', 2);
    const b = loadGlyphs('test', 2);
    expect(a.images).toEqual(b.images);
    const counts = new Array<number>(GLYPH_CLASSES).fill(0);
    for (const l of a.labels) counts[l]!++;
    expect(counts.every((c) => c === 2)).toBe(true);
  });
});
