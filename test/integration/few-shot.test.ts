import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { attackSuccessRate } from '../data/evaluate.ts';
import { loadModelFromDisk } from '../data/load-dir.ts';
import { loadMnist } from '../data/mnist.ts';
import { runCli, type CliRun } from '../helpers/cli.ts';
import { heldOut, manifest, MODELS } from '../helpers/fixtures.ts';
import { sampleFromSet, trustedSample, writeSampleFolder } from '../helpers/sample.ts';
import { initWasmBackend } from '../../src/core/tfjs/backend.ts';

// Few-shot mode through the real CLI: a trusted sample of real MNIST test digits (rows from 5000 on, apart
// from the 3000 the judgement below uses), laid out as a user would (<class>/<n>.png).
const fx = manifest().find((m) => m.name === 'mnist-badnets')!;
const model = join(MODELS, fx.path);

describe('shapguard scan --clean-samples', () => {
  let sampleDir: string;
  let run: CliRun;
  beforeAll(async () => {
    await initWasmBackend();
    sampleDir = mkdtempSync(join(tmpdir(), 'shapguard-sample-'));
    writeSampleFolder(sampleDir, await trustedSample('mnist', 10));
    run = await runCli(['scan', model, '--out', '$OUT', '--seed', '1', '--clean-samples', sampleDir]);
  });

  it('records the mode, the sample (sizes and digest, no images) and the stages it served', () => {
    const r = run.report!;
    expect(r.verdict, run.stderr).toBe('backdoor');
    expect(r.mode).toBe('few-shot');
    expect(r.sample!.perClass).toEqual(Array(10).fill(10));
    expect(r.sample!.heldBack).toBe(30);
    expect(r.sample!.used).toBe(70);
    expect(r.sample!.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(r.sample!.predictedRight).toBeGreaterThan(60);
    expect(r.sample!.stages).toEqual(['detection', 'shapley', 'pruning-guard', 'check']);
  });

  it('repairs the planted target, checked again on the held-back real images, and the real trigger is gone', async () => {
    const r = run.report!;
    expect(r.detection!.flagged).toEqual([fx.attack!.target]);
    expect(r.repair!.status).toBe('repaired');
    const held = r.repair!.check!.heldBack!;
    expect(held.images).toBe(30);
    expect(held.targets.map((t) => [t.target, t.removed])).toEqual([[fx.attack!.target, true]]);
    expect(held.intervalAfter[0]).toBeLessThanOrEqual(held.accuracyAfter);
    expect(held.intervalAfter[1]).toBeGreaterThanOrEqual(held.accuracyAfter);
    const repaired = await loadModelFromDisk(join(run.repairedDir!, 'model.json'));
    expect(attackSuccessRate(repaired, heldOut('mnist'), fx.attack!.trigger, fx.attack!.target)).toBeLessThan(0.05);
  });

  it('says in report.html that a trusted sample took part', async () => {
    const { readFileSync } = await import('node:fs');
    const html = readFileSync(join(run.out, 'report.html'), 'utf8');
    expect(html).toMatch(/few-shot/);
    expect(html).toMatch(/100 trusted images/);
  });

  it('refuses a sample for another model (a class folder this model does not have): exit 2, nothing repaired', async () => {
    const bad = mkdtempSync(join(tmpdir(), 'shapguard-sample-bad-'));
    mkdirSync(join(bad, '0'));
    mkdirSync(join(bad, '42'));
    writeFileSync(join(bad, '0', 'a.png'), Uint8Array.from(await (await sampleFromSet(loadMnist('test', 50), 1))[0]!.bytes));
    writeFileSync(join(bad, '42', 'a.png'), Uint8Array.from(await (await sampleFromSet(loadMnist('test', 50), 1))[0]!.bytes));
    const r = await runCli(['scan', model, '--out', '$OUT', '--clean-samples', bad]);
    expect(r.code).toBe(2);
    expect(r.report!.verdict).toBe('error');
    expect(r.report!.reason).toMatch(/folder "42" is not a class index of this 10-class model/);
    expect(r.repairedDir).toBeNull();
  });

  // One held-back image per class let the check certify a repair that kept 63.5% of the planted trigger
  // (docs/benchmarks.md); with 3 per class one is held back, with 2 none.
  it('does not certify from a sample too small to hold 3 images per class back (3 per class: 1 held back)', async () => {
    const small = mkdtempSync(join(tmpdir(), 'shapguard-sample-small-'));
    writeSampleFolder(small, await trustedSample('mnist', 3));
    const r = await runCli(['scan', model, '--out', '$OUT', '--seed', '1', '--clean-samples', small]);
    expect(r.report!.verdict).toBe('backdoor');
    expect(r.report!.sample!.heldBack).toBe(10);
    expect(r.report!.repair!.status).toBe('not-repaired');
    expect(r.report!.repair!.reason).toMatch(/the sample held back 10 images for the check on real images, fewer than 3 in every class/);
    expect(r.repairedDir).toBeNull();
  });

  it('refuses a missing sample folder before scanning: exit 2, no report', async () => {
    const r = await runCli(['scan', model, '--out', '$OUT', '--clean-samples', join(sampleDir, 'nope')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--clean-samples .*nope: no such folder/);
    expect(r.report).toBeNull();
  });
});
