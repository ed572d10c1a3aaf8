import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initWasmBackend } from '../../src/core/tfjs/backend.ts';
import { BN_CLASSES, bnGradients, bnMatchLoss, bnSurrogate, disposeBnGradients } from '../../src/core/stages/synthesis/bn-match.ts';
import { Budget } from '../../src/core/budget.ts';
import { loadModel } from '../../src/core/model/load.ts';
import { describeModel, type ModelInfo } from '../../src/core/model/model-info.ts';
import { Rng } from '../../src/core/util/rng.ts';
import { synthesize, SYNTH_DEFAULTS } from '../../src/core/stages/synthesis/synth.ts';
import { reverseTriggers, TRIGGER_DEFAULTS } from '../../src/core/stages/trigger/reverse.ts';
import { nodeWasmPath } from '../../src/node/wasm-path.ts';
import { readDir, writeTinyModel } from '../helpers/tiny-model.ts';
import { TEST_BOUNDS } from '../helpers/scan-bounds.ts';
import { MODELS } from '../helpers/fixtures.ts';
import { join } from 'node:path';
import { scanModel } from '../../src/core/scan/scan.ts';
import { playerKey } from '../../src/core/stages/players.ts';

// Memory-sized groups must not change the optimisation: the groups' gradients add up to the full one.
let info: ModelInfo;
let bnInfo: ModelInfo;
beforeAll(async () => {
  await initWasmBackend({ wasmPath: nodeWasmPath() });
  info = describeModel((await loadModel(readDir(await writeTinyModel()), 'model.json')).model);
  bnInfo = describeModel((await loadModel(readDir(await writeTinyModel({ bn: true })), 'model.json')).model);
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

  it('the BatchNorm term in row groups has the gradient of the whole batch', () => {
    const n = 10;
    const x = tf.tensor4d(
      Float32Array.from({ length: n * 64 }, (_, i) => ((i * 7919) % 101) / 100),
      [n, 8, 8, 1],
    );
    const targets = new Map(bnInfo.bn.map((s) => [s.layer, s]));
    const tap = { tapClasses: BN_CLASSES };
    const exact = tf.grad((v: tf.Tensor) => {
      const terms: tf.Scalar[] = [];
      bnInfo.graph.run(v, { ...tap, tap: (layer, input) => void terms.push(tf.keep(bnMatchLoss(input, targets.get(layer.name)!))) });
      return tf.addN(terms);
    })(x);
    const grads = bnGradients(bnInfo, (a, g) => tf.slice(x, [a], [g]) as tf.Tensor4D, n, 3, targets);
    const parts: tf.Tensor[] = [];
    for (let a = 0; a < n; a += 3) {
      const g = Math.min(3, n - a);
      parts.push(
        tf.grad((v: tf.Tensor) => {
          const terms: tf.Scalar[] = [];
          bnInfo.graph.run(v, { ...tap, tap: (layer, input) => void terms.push(tf.keep(bnSurrogate(input, grads.get(layer.name)!))) });
          return tf.addN(terms);
        })(tf.slice(x, [a], [g])),
      );
    }
    const grouped = tf.concat(parts);
    expect(grads.size).toBe(1);
    expect(tf.max(tf.abs(exact)).dataSync()[0]).toBeGreaterThan(1e-4);
    expect(maxAbs(grouped.dataSync() as Float32Array, exact.dataSync() as Float32Array)).toBeLessThan(1e-5);
    disposeBnGradients(grads);
    tf.dispose([x, exact, grouped, ...parts]);
  });

  it('synthesis of a BatchNorm model in row groups gives the images of one full batch', () => {
    const cfg = { ...SYNTH_DEFAULTS, maxSteps: 15, confidence: 1.1, bn: 1 };
    const whole = synthesize(bnInfo, [0, 1], cfg, new Rng(3), stage());
    const grouped = synthesize(bnInfo, [0, 1], cfg, new Rng(3), stage(), 4);
    expect(grouped.steps).toBe(whole.steps);
    expect(maxAbs(grouped.rev.images, whole.rev.images)).toBeLessThan(1e-3);
  });

  it('a scan finds and repairs the same at a small memory budget as at the default', async () => {
    const files = readDir(join(MODELS, 'mnist-badnets'));
    const scan = (memoryBudgetBytes?: number) => scanModel(files, { seed: 2, toolVersion: 'test', ...TEST_BOUNDS, memoryBudgetBytes });
    const full = (await scan()).report;
    const small = (await scan(2 * 1024 * 1024)).report;
    expect(small.config.memoryBudgetBytes).toBeLessThan(full.config.memoryBudgetBytes / 10);
    expect(full.verdict).toBe('backdoor');
    expect(small.verdict).toBe(full.verdict);
    expect(small.detection?.flagged).toEqual(full.detection?.flagged);
    expect(small.repair?.pruned.map(playerKey)).toEqual(full.repair?.pruned.map(playerKey));
    // Row groups sum in another order; over hundreds of optimiser steps that drifts a mask by a few percent.
    small.detection!.classes.forEach((c, i) => {
      const whole = full.detection!.classes[i]!.maskNorm;
      expect(Math.abs(c.maskNorm - whole) / whole).toBeLessThan(0.1);
    });
  });
});
