import { beforeAll, describe, expect, it } from 'vitest';
import { initWasmBackend } from '../src/core/backend.ts';
import { Budget } from '../src/core/budget.ts';
import { loadModel } from '../src/core/load-model.ts';
import { describeModel, type ModelInfo } from '../src/core/model-info.ts';
import { Rng } from '../src/core/rng.ts';
import { synthesize, SYNTH_DEFAULTS } from '../src/core/synth.ts';
import { reverseTriggers, TRIGGER_DEFAULTS } from '../src/core/trigger.ts';
import { nodeWasmPath } from '../src/node/wasm-path.ts';
import { readDir, writeTinyModel } from './helpers/tiny-model.ts';

// Memory-sized groups must not change the optimisation: the groups' gradients add up to the full one.
let info: ModelInfo;
beforeAll(async () => {
  await initWasmBackend({ wasmPath: nodeWasmPath() });
  info = describeModel((await loadModel(readDir(await writeTinyModel()), 'model.json')).model);
});

const stage = () => new Budget(1e9, Infinity).stage(1);
const maxAbs = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

describe('memory-sized groups', () => {
  it('synthesis in row groups gives the images of one full batch', () => {
    const cfg = { ...SYNTH_DEFAULTS, maxSteps: 15, confidence: 1.1 };
    const whole = synthesize(info, [0, 1], cfg, new Rng(3), stage());
    const grouped = synthesize(info, [0, 1], cfg, new Rng(3), stage(), 4);
    expect(grouped.steps).toBe(whole.steps);
    expect(maxAbs(grouped.rev.images, whole.rev.images)).toBeLessThan(1e-3);
  });

  it('the trigger reverse in target groups gives the masks of one pass', () => {
    const synth = synthesize(info, [0, 1], { ...SYNTH_DEFAULTS, maxSteps: 20 }, new Rng(4), stage());
    const cfg = { ...TRIGGER_DEFAULTS, maxSteps: 20, imagesPerTarget: 4 };
    const whole = reverseTriggers(info, synth.rev, [0, 1], cfg, new Rng(5), stage());
    const grouped = reverseTriggers(info, synth.rev, [0, 1], cfg, new Rng(5), stage(), { rowsPerPass: 4 });
    for (const [i, t] of whole.triggers.entries()) {
      expect(grouped.triggers[i]!.steps).toBe(t.steps);
      expect(maxAbs(grouped.triggers[i]!.mask, t.mask)).toBeLessThan(1e-3);
    }
  });
});
