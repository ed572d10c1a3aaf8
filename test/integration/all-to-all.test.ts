import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { SarifLog } from '../../src/core/output/sarif.ts';
import { playerKey } from '../../src/core/stages/players.ts';
import { accuracy, allToAllSuccessRate } from '../data/evaluate.ts';
import { loadModelFromDisk } from '../data/load-dir.ts';
import { loadMnist } from '../data/mnist.ts';
import { runCli, type CliRun } from '../helpers/cli.ts';
import { sampleDir, trustedSample, writeSampleFolder } from '../helpers/sample.ts';
import type { AllToAllZooEntry } from '../../tools/fixtures/zoo.ts';

// The all-to-all check and repair (issue 16) through the real CLI, few-shot with 10 real test digits per
// class (rows from 5000 on; the judgement below uses rows up to 2000). The planted model is the zoo's
// tuning-half 4×4-patch all-to-all LeNet (class y → y+1); the clean one is the zoo's LeNet trained on the
// same recipe without a trigger.
const ZOO = 'test/fixtures/zoo';
const fixture = (name: string) =>
  (JSON.parse(readFileSync(join(ZOO, 'all-to-all.json'), 'utf8')) as AllToAllZooEntry[]).find((m) => m.name === name)!;
const a2a = fixture('mnist-lenet-a2a-next-patch4-tr');
const scan = async (path: string, extra: string[] = []) =>
  runCli(['scan', join(ZOO, path), '--out', '$OUT', '--seed', '1', '--clean-samples', await sampleDir('mnist'), ...extra]);

describe('the all-to-all check (few-shot)', () => {
  let planted: CliRun;
  let clean: CliRun;
  let sarif: string;
  beforeAll(async () => {
    sarif = join(mkdtempSync(join(tmpdir(), 'shapguard-sarif-')), 'scan.sarif');
    planted = await scan(a2a.path, ['--sarif', sarif]);
    clean = await scan('mnist-lenet-clean/model.json');
  });

  it('the planted model really is all-to-all: its trigger sends real test digits to their mapped classes', async () => {
    const model = await loadModelFromDisk(join(ZOO, a2a.path));
    expect(allToAllSuccessRate(model, loadMnist('test', 2000), a2a.attack.trigger, a2a.attack.mapping, 1)).toBeGreaterThan(0.9);
  });

  it('flags an all-to-all backdoor no class reveals alone, and finds its mapping (exit 1)', () => {
    const r = planted.report!;
    expect(r.verdict, planted.stderr).toBe('backdoor');
    expect(planted.code).toBe(1);
    // No single class is an outlier: the all-to-one search flags nothing; the pair check does.
    expect(r.detection!.flagged).toEqual([]);
    expect(r.allToAll!.checked).toBe(true);
    expect(r.allToAll!.flagged).toBe(true);
    expect(r.allToAll!.score).toBeGreaterThanOrEqual(r.config.allToAll.minScore);
    const hits = r.allToAll!.mapping.filter((t, s) => t === a2a.attack.mapping[s]).length;
    expect(hits).toBeGreaterThanOrEqual(5);
    expect(r.sample!.stages).toContain('all-to-all');
    // Every pair was searched to the end: the verdict is not a budget cut's.
    expect(r.allToAll!.reason).toBeNull();
    expect(r.allToAll!.norms.flat().filter((v) => v !== null).length).toBeGreaterThan(80);
  });

  it('repairs it: the planted trigger no longer works on real test digits, accuracy kept, the check on held-back images passed', async () => {
    const r = planted.report!;
    expect(r.repair!.status, r.repair!.reason ?? '').toBe('repaired');
    expect(planted.repairedDir).not.toBeNull();
    // One game over the pairs whose triggers carry the mapping, pruned in its order.
    const game = r.shapley.find((s) => s.target === null)!;
    expect(game.pairs!.length).toBeGreaterThan(0);
    expect(game.pairs!.every(([s, t]) => r.allToAll!.mapping[s] === t)).toBe(true);
    expect(r.repair!.pruned.map(playerKey)).toEqual(game.players.slice(0, r.repair!.pruned.length).map(playerKey));
    // The check: the whole pair check again on the pruned model, over held-back real images only.
    const check = r.allToAll!.repairCheck!;
    expect(check.passed).toBe(true);
    expect(check.images).toBeGreaterThan(0);
    expect(check.images).toBeLessThanOrEqual(r.sample!.heldBack);
    expect(check.score).toBeLessThan(r.config.allToAll.minScore);
    // Its power: the same search on the original model, same images and stream, finds the mapping there.
    expect(check.original).toBeGreaterThanOrEqual(r.config.allToAll.minScore);
    expect(r.budget.stages.map((s) => s.name)).toEqual(expect.arrayContaining(['all-to-all-check-original', 'all-to-all-check-repair']));
    expect(r.sample!.stages).toContain('check');
    // The judgement: the really planted trigger on real test digits the scan never saw.
    const digits = loadMnist('test', 2000);
    const before = await loadModelFromDisk(join(ZOO, a2a.path));
    const after = await loadModelFromDisk(join(planted.repairedDir!, 'model.json'));
    expect(allToAllSuccessRate(after, digits, a2a.attack.trigger, a2a.attack.mapping, 1)).toBeLessThanOrEqual(0.1);
    expect(accuracy(before, digits) - accuracy(after, digits)).toBeLessThanOrEqual(0.01);
  });

  it('says so in report.html (mapping, score, heat map) and in SARIF (one all-to-all result)', () => {
    const html = readFileSync(join(planted.out, 'report.html'), 'utf8');
    expect(html).toMatch(/<h2>All-to-all check: flagged<\/h2>/);
    expect(html).toContain('<table id="pair-heat-map">');
    expect(html).toContain('source \\ target');
    expect(html).toContain(planted.report!.allToAll!.mapping.map((t, s) => `${s}→${t}`).join(' '));
    const log = JSON.parse(readFileSync(sarif, 'utf8')) as SarifLog;
    const results = log.runs[0]!.results;
    expect(results.map((x) => [x.ruleId, x.level])).toEqual([['SG001', 'error']]);
    expect(results[0]!.message.text).toMatch(/^All-to-all backdoor detected.*Repair: repaired\.$/);
    expect(html).toMatch(/<h3 id="all-to-all-check">Check of the repair: passed: no mapping is left<\/h3>/);
    expect(html).toMatch(/<h3>All-to-all: every mapped pair \(/);
  });

  it('leaves a clean model alone: checked, nothing follows a mapping, clean (exit 0)', () => {
    const r = clean.report!;
    expect(r.verdict, clean.stderr).toBe('clean');
    expect(clean.code).toBe(0);
    expect(r.allToAll!.checked).toBe(true);
    expect(r.allToAll!.reason).toBeNull();
    expect(r.allToAll!.flagged).toBe(false);
    expect(r.allToAll!.score).toBeLessThan(r.config.allToAll.minScore);
    expect(clean.repairedDir).toBeNull();
    const html = readFileSync(join(clean.out, 'report.html'), 'utf8');
    expect(html).toMatch(/<h2>All-to-all check: nothing found<\/h2>/);
  });

  it('not run where the budget cannot hold it: the all-to-one verdict stands, and the report says what was left out', async () => {
    // Enough for synthesis and the all-to-one search of this model (about 58k evaluations), not for its 90
    // pairs (forecast at 54k or more; they took 56k above).
    const r = await scan('mnist-lenet-clean/model.json', ['--max-evals', '100000']);
    expect(r.report!.verdict, r.stderr).toBe('clean');
    expect(r.code).toBe(0);
    expect(r.report!.budget.evaluationsUsed).toBeLessThan(100_000);
    expect(r.report!.allToAll).toMatchObject({ checked: false, flagged: false });
    expect(r.report!.allToAll!.reason).toMatch(
      /^its 90 source → target pairs need at least 54000 evaluations .* raise --budget or --max-evals/,
    );
    expect(r.report!.coverage!.notes).toContain(`the all-to-all check did not run: ${r.report!.allToAll!.reason}`);
    expect(r.report!.sample!.stages).not.toContain('all-to-all');
    expect(readFileSync(join(r.out, 'report.html'), 'utf8')).toContain('the all-to-all check did not run: its 90 source');
  });

  // The all-to-one rule holds here too (scan/steps.ts, heldBackShort): with 3 per class one is held back.
  // The pair check finds few all-to-all models on 2 images per class; this one it finds at seed 2.
  it('does not certify from a sample too small to hold 3 images per class back: not-repaired, nothing written', async () => {
    const small = mkdtempSync(join(tmpdir(), 'shapguard-a2a-small-'));
    writeSampleFolder(small, await trustedSample('mnist', 3));
    const r = await runCli([
      'scan',
      join(ZOO, fixture('mnist-small-a2a-perm-sparse6-tl').path),
      '--out',
      '$OUT',
      '--seed',
      '2',
      '--clean-samples',
      small,
    ]);
    expect(r.report!.verdict, r.stderr).toBe('backdoor');
    expect(r.report!.allToAll!.flagged).toBe(true);
    expect(r.report!.sample!.heldBack).toBe(10);
    expect(r.report!.repair!.pruned.length).toBeGreaterThan(0);
    expect(r.report!.repair!.status).toBe('not-repaired');
    expect(r.report!.repair!.reason).toMatch(/the sample held back 10 images for the check on real images, fewer than 3 in every class/);
    // Refused before its two pair searches: they could not certify, and are the costliest part of the scan.
    expect(r.report!.allToAll!.repairCheck).toMatchObject({ passed: false, original: null });
    expect(r.report!.budget.stages.map((s) => s.name)).not.toContain('all-to-all-check-original');
    expect(r.repairedDir).toBeNull();
    expect(r.code).toBe(1);
  });
});

// A data-free scan says why the all-to-all check did not run: e2e-clean.test.ts, on its clean fixtures.
