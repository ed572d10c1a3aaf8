import { describe, expect, it } from 'vitest';
import { freshSchedule, scheduleStep, type ScheduleState } from '../../src/core/stages/trigger/cost-schedule.ts';

const cfg = { successTarget: 0.99, patience: 3, earlyStop: 4 };

/** Runs the schedule over (success, norm) steps from a fresh start and returns every state after a step. */
function run(steps: [number, number][], start: ScheduleState = freshSchedule(1e-3)) {
  const states: (ScheduleState & { improved: boolean; keep: boolean })[] = [];
  let s = start;
  for (const [success, norm] of steps) {
    const out = scheduleStep(s, success, norm, cfg);
    s = out.next;
    states.push({ ...s, improved: out.improved, keep: out.keep });
  }
  return states;
}

describe("Neural Cleanse's cost schedule", () => {
  it('doubles the cost after `patience` steps in a row at the success target, and restarts the count', () => {
    const states = run([
      [1, 50],
      [1, 49],
      [1, 48],
      [1, 47],
    ]);
    expect(states.map((s) => s.cost)).toEqual([1e-3, 1e-3, 2e-3, 2e-3]);
    expect(states.map((s) => s.up)).toEqual([1, 2, 0, 1]);
  });

  it('halves the cost after `patience` steps in a row below it', () => {
    const states = run([
      [0.5, 50],
      [0.5, 50],
      [0.5, 50],
    ]);
    expect(states.map((s) => s.cost)).toEqual([1e-3, 1e-3, 5e-4]);
    expect(states.every((s) => !s.reached)).toBe(true);
  });

  it('a step below the target resets the run of successes', () => {
    const states = run([
      [1, 50],
      [1, 49],
      [0.9, 60],
      [1, 48],
    ]);
    expect(states.map((s) => [s.up, s.down])).toEqual([
      [1, 0],
      [2, 0],
      [0, 1],
      [1, 0],
    ]);
  });

  it('keeps the smallest norm at the success target; until one is reached, the latest norm', () => {
    const states = run([
      [0.5, 90],
      [0.6, 80],
      [1, 70],
      [1, 75],
      [1, 60],
      [0.5, 10],
    ]);
    expect(states.map((s) => s.best)).toEqual([90, 80, 70, 70, 60, 60]);
    expect(states.map((s) => s.reached)).toEqual([false, false, true, true, true, true]);
    expect(states.map((s) => s.bestSuccess)).toEqual([0.5, 0.6, 1, 1, 1, 1]);
    // A new best asks for the mask; a larger mask, or one below the target, is not kept.
    expect(states.map((s) => s.improved)).toEqual([false, false, true, false, true, false]);
    expect(states.map((s) => s.keep)).toEqual([false, false, true, false, true, false]);
  });

  it('a mask at the target as large as the best is kept but is no improvement', () => {
    const [, second] = run([
      [1, 40],
      [1, 40],
    ]);
    expect(second!.improved).toBe(false);
    expect(second!.keep).toBe(true);
  });

  it('stops once no step has shrunk the best by 1% for more than `earlyStop` steps', () => {
    // Step 1 reaches 100; later steps shrink it, each by under 1% of the best before it: no improvement.
    const creeping = run([
      [1, 100],
      [1, 99.5],
      [1, 99.2],
      [1, 99],
      [1, 98.8],
      [1, 98.7],
    ]);
    expect(creeping.map((s) => s.best)).toEqual([100, 99.5, 99.2, 99, 98.8, 98.7]);
    expect(creeping.map((s) => s.lastImprovement)).toEqual([1, 1, 1, 1, 1, 1]);
    // Done once steps − 1 > earlyStop (4).
    expect(creeping.map((s) => s.done)).toEqual([false, false, false, false, false, true]);
    // A drop of 1% or more at step 5 starts the count again.
    const dropping = run([
      [1, 100],
      [1, 99.5],
      [1, 99.2],
      [1, 99],
      [1, 90],
      [1, 89.9],
    ]);
    expect(dropping.map((s) => s.lastImprovement)).toEqual([1, 1, 1, 1, 5, 5]);
    expect(dropping.at(-1)!.done).toBe(false);
  });

  it('never stops before the success target is reached', () => {
    const states = run(Array.from({ length: 20 }, () => [0.5, 30] as [number, number]));
    expect(states.some((s) => s.done)).toBe(false);
    expect(states.at(-1)!.steps).toBe(20);
  });

  it('leaves the state it was given unchanged', () => {
    const start = freshSchedule(1e-3);
    const copy = { ...start };
    scheduleStep(start, 1, 10, cfg);
    expect(start).toEqual(copy);
  });
});
