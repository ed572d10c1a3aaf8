import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initWasmBackend } from '../../src/core/tfjs/backend.ts';
import { scanModel } from '../../src/core/scan/scan.ts';
import { nodeWasmPath } from '../../src/node/wasm-path.ts';
import { readModelFiles } from '../../src/node/read-model.ts';
import { TEST_BOUNDS, TEST_BUDGET_SECONDS } from '../helpers/scan-bounds.ts';
import { MODELS } from '../helpers/fixtures.ts';
import { readDir, writeTinyModel } from '../helpers/tiny-model.ts';
import { trustedSample } from '../helpers/sample.ts';

// The Node server's scan thread and a Worker isolate run scan after scan in one process: a scan must leave
// no tensor behind, on any path (synthesis with and without BatchNorm, trigger reverse, Shapley, pruning,
// the recheck and verification).
beforeAll(async () => {
  await initWasmBackend({ wasmPath: nodeWasmPath() });
});

describe('tensor lifetime', () => {
  it('a few-shot backdoor scan with a repair leaves no tensors behind (sample decoding and the held-back check included)', async () => {
    const { files, entry } = await readModelFiles(join(MODELS, 'mnist-badnets/model.json'));
    const cleanSample = await trustedSample('mnist', 10);
    const before = tf.memory().numTensors;
    const events: { stage: string; fraction: number; detail?: string }[] = [];
    const onProgress = (stage: string, fraction: number, detail?: string) => void events.push({ stage, fraction, detail });
    const { report } = await scanModel(files, { entry, seed: 1, toolVersion: 'test', cleanSample, ...TEST_BOUNDS, onProgress });
    expect(report.verdict).toBe('backdoor');
    expect(report.repair!.status).toBe('repaired');
    expect(tf.memory().numTensors).toBe(before);
    // The same scan reports its progress within stages, not only between them (the CLI's bar draws it).
    const within = (stage: string) => events.filter((e) => e.stage === stage && e.fraction > 0 && e.fraction < 1);
    expect(new Set(within('trigger-reverse').map((e) => e.fraction)).size).toBeGreaterThanOrEqual(10);
    const details = within('trigger-reverse').map((e) => e.detail);
    expect(details).toContain('0/10 classes settled, step 1');
    const restarts = report.config.triggerReverse.restarts;
    expect(details.at(-1)).toMatch(new RegExp(`^\\d+/${restarts} smallest rerun from fresh starts settled, step \\d+$`));
    expect(within('synthesis').length).toBeGreaterThan(3);
    expect(within('shapley').some((e) => /permutations, ranking stable for/.test(e.detail ?? ''))).toBe(true);
    expect(within('verification').length).toBeGreaterThan(3);
    expect(events.map((e) => e.stage)).toContain('pruning');
    expect(events.every((e) => e.fraction >= 0 && e.fraction <= 1)).toBe(true);
  });

  it('a scan of a BatchNorm model leaves no tensors behind', async () => {
    const files = readDir(await writeTinyModel({ bn: true }));
    const before = tf.memory().numTensors;
    const { report } = await scanModel(files, { seed: 3, toolVersion: 'test', maxEvals: 20000, budgetSeconds: TEST_BUDGET_SECONDS });
    expect(['clean', 'backdoor', 'incomplete']).toContain(report.verdict);
    expect(report.model!.batchNormLayers).toBe(1);
    expect(tf.memory().numTensors).toBe(before);
  });
});
