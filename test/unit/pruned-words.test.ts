import { describe, expect, it } from 'vitest';
import { prunedWords } from '../../src/core/output/report-html.ts';

// What the reviewer reads (report.html) and the demo prints about a repair: each kind counted and named.
describe('prunedWords', () => {
  it('counts and names channels, positions and a position’s channels (cells)', () => {
    expect(prunedWords([])).toBe('nothing pruned');
    expect(prunedWords([{ layer: 'fc1', channel: null, position: [4, 4] }])).toBe('1 position pruned (fc1 input position 4,4)');
    expect(
      prunedWords([
        { layer: 'conv2', channel: 5, position: null },
        { layer: 'fc1', channel: 13, position: [4, 4] },
        { layer: 'fc1', channel: 7, position: [4, 4] },
      ]),
    ).toBe(
      "1 channel and 2 positions' channels pruned (conv2 channel 5, fc1 input position 4,4 channel 13, fc1 input position 4,4 channel 7)",
    );
    const many = Array.from({ length: 10 }, (_, c) => ({ layer: 'conv2', channel: c, position: null }));
    expect(prunedWords(many)).toMatch(/^10 channels pruned \(conv2 channel 0, .*conv2 channel 7, and 2 more\)$/);
  });
});
