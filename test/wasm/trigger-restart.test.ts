import { beforeAll, describe, expect, it } from 'vitest';
import { initWasmBackend } from '../../src/core/tfjs/backend.ts';
import { Budget } from '../../src/core/budget.ts';
import { loadModel } from '../../src/core/model/load.ts';
import { describeModel, type ModelInfo } from '../../src/core/model/model-info.ts';
import { Rng } from '../../src/core/util/rng.ts';
import { synthesize, SYNTH_DEFAULTS, type ImageBatch } from '../../src/core/stages/synthesis/synth.ts';
import { reverseTriggers, TRIGGER_DEFAULTS } from '../../src/core/stages/trigger/reverse.ts';
import { nodeWasmPath } from '../../src/node/wasm-path.ts';
import { readDir, writeTinyModel } from '../helpers/tiny-model.ts';

let info: ModelInfo;
let rev: ImageBatch;
const stage = () => new Budget(1e9, Infinity).stage(1);
beforeAll(async () => {
  await initWasmBackend({ wasmPath: nodeWasmPath() });
  info = describeModel((await loadModel(readDir(await writeTinyModel()), 'model.json')).model);
  rev = synthesize(info, [0, 1], { ...SYNTH_DEFAULTS, maxSteps: 20 }, new Rng(4), stage()).rev;
});

describe('trigger reverse restarts', () => {
  it('reruns the smallest masks and keeps a rerun only where it is clearly smaller', () => {
    const cfg = { ...TRIGGER_DEFAULTS, maxSteps: 40, imagesPerTarget: 4, earlyStop: 10 };
    const once = reverseTriggers(info, rev, [0, 1], { ...cfg, restarts: 0 }, new Rng(5), stage());
    const twice = reverseTriggers(info, rev, [0, 1], { ...cfg, restarts: 2, restartAccept: 0.999 }, new Rng(5), stage());
    const smallest = once.triggers
      .filter((t) => t.reached)
      .sort((a, b) => a.norm - b.norm || a.target - b.target)
      .slice(0, 2)
      .map((t) => t.target);
    expect(smallest.length).toBe(2);
    for (const [i, t] of once.triggers.entries()) {
      const u = twice.triggers[i]!;
      if (!smallest.includes(t.target)) {
        // The others are the first run, untouched.
        expect(u.restartNorm).toBeNull();
        expect(u.norm).toBe(t.norm);
        expect(u.steps).toBe(t.steps);
        continue;
      }
      expect(u.restartNorm).not.toBeNull();
      expect(u.steps).toBeGreaterThan(t.steps);
      const again = u.restartNorm!;
      // The rerun wins only below restartAccept × the first run's norm; the mask goes with the norm.
      if (again <= 0.999 * t.norm) expect(u.norm).toBe(again);
      else {
        expect(u.norm).toBe(t.norm);
        expect(Array.from(u.mask)).toEqual(Array.from(t.mask));
      }
      expect(u.finished).toBe(t.finished);
    }
  });

  it('a budget that stops the reruns leaves the finished first runs as they were', () => {
    const cfg = { ...TRIGGER_DEFAULTS, maxSteps: 30, imagesPerTarget: 4, earlyStop: 1000 };
    const once = reverseTriggers(info, rev, [0, 1], { ...cfg, restarts: 0 }, new Rng(6), stage());
    // Enough evaluations for the first runs and a few rerun steps, not for the reruns to finish.
    const firstCost = 3 * once.triggers.reduce((a, t) => a + t.steps * 4, 0);
    const capped = reverseTriggers(
      info,
      rev,
      [0, 1],
      { ...cfg, restarts: 2 },
      new Rng(6),
      new Budget(1e9, firstCost + 3 * 2 * 4 * 5).stage(1),
    );
    for (const [i, t] of once.triggers.entries()) {
      expect(capped.triggers[i]!.finished).toBe(t.finished);
      if (capped.triggers[i]!.restartNorm === null || capped.triggers[i]!.norm === t.norm) continue;
      expect(capped.triggers[i]!.norm).toBeLessThanOrEqual(TRIGGER_DEFAULTS.restartAccept * t.norm);
    }
    expect(capped.stoppedBy).toBe(once.stoppedBy);
  });
});
