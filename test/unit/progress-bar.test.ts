import { describe, expect, it } from 'vitest';
import { terminalProgress } from '../../src/cli/progress-bar.ts';

// The CLI's bar, driven as a scan drives it, on a stand-in stream and clock (the real stream is a TTY).
function bar(columns?: number) {
  const lines: string[] = [];
  let t = 0;
  const draw = terminalProgress({ write: (s) => lines.push(s), columns }, () => t);
  return { lines, draw, at: (ms: number) => (t = ms), last: () => lines.at(-1)!.replace(/^\r/, '').trimEnd() };
}

describe('terminal progress bar', () => {
  it('moves within a stage, names what the stage is doing and estimates its time left', () => {
    const b = bar();
    b.draw('trigger-reverse', 0);
    expect(b.last()).toMatch(/3\/9 trigger-reverse 0%$/);
    b.at(5000);
    b.draw('trigger-reverse', 0.25, '2/10 classes settled, step 75');
    expect(b.last()).toMatch(/3\/9 trigger-reverse 25% · 2\/10 classes settled, step 75 · ~15 s left$/);
    b.at(10_000);
    b.draw('trigger-reverse', 0.5, '6/10 classes settled, step 150');
    expect(b.last()).toMatch(/ 50% · 6\/10 classes settled, step 150 · ~10 s left$/);
    // The overall bar fills with the stage: 2.5 of 9 stages done is 6.7, drawn as 7 of 24 marks.
    expect(b.last()).toMatch(/^\[#{7}-{17}\]/);
  });

  it('never moves back within a stage, starts over at a new one, and ends the line after saving', () => {
    const b = bar();
    b.draw('shapley', 0);
    b.at(1000);
    b.draw('shapley', 0.6, '40 permutations');
    b.at(2000);
    b.draw('shapley', 0.3, '41 permutations');
    expect(b.last()).toMatch(/shapley 60% · 41 permutations/);
    b.at(2050);
    b.draw('pruning', 0);
    expect(b.last()).toMatch(/7\/9 pruning 0%$/);
    b.at(2060);
    b.draw('save', 1);
    expect(b.lines.at(-1)).toBe('\n');
  });

  it('redraws at most ten times a second, except when the stage changes', () => {
    const b = bar();
    b.draw('synthesis', 0);
    for (let i = 1; i < 50; i++) {
      b.at(i);
      b.draw('synthesis', i / 100, `step ${i}`);
    }
    expect(b.lines).toHaveLength(1);
    b.at(150);
    b.draw('synthesis', 0.6, 'step 60');
    expect(b.lines).toHaveLength(2);
    b.at(151);
    b.draw('trigger-reverse', 0);
    expect(b.lines).toHaveLength(3);
  });

  it('keeps the line within a narrow terminal, so \\r redraws it in place', () => {
    const b = bar(60);
    b.draw('trigger-reverse', 0);
    b.at(1000);
    b.draw('trigger-reverse', 0.5, '6/10 classes settled, step 150');
    expect(b.lines.every((l) => l.length <= 60)).toBe(true);
  });
});
