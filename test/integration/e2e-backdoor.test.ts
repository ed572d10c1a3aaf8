import { beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { accuracy, attackSuccessRate } from '../data/evaluate.ts';
import { loadModelFromDisk } from '../data/load-dir.ts';
import { runCli, type CliRun } from '../helpers/cli.ts';
import { heldOut, manifest, MODELS } from '../helpers/fixtures.ts';
import { playerKey } from '../../src/core/stages/players.ts';

// Judged on REAL held-out images with the REALLY planted trigger, never on the scanner's own data.
// --budget is generous so CI's two busy cores do not turn this into a speed test (the benchmark is that).
const backdoored = manifest().filter((m) => m.attack !== null);

/** Fixtures the pruning repair does not yet fix (see docs/threat-model.md); their detection is still tested. */
const REPAIR_KNOWN_GAP = new Set(['mnist-blended']);
/**
 * Fixtures whose planted trigger reverses to a mask no smaller than the natural ones of clean models (0.27–0.30
 * of the median against a genuine CNN's 0.30): missed at this seed rather than clean models flagged
 * (docs/benchmarks.md). `it.fails` keeps them measured: the day they are found, these tests say so.
 */
const DETECTION_KNOWN_GAP = new Set(['mnist-patch4']);

describe.each(backdoored)('backdoored fixture $name', (fx) => {
  let run: CliRun;
  beforeAll(async () => {
    run = await runCli(['scan', join(MODELS, fx.path), '--out', '$OUT', '--seed', '1']);
  });

  const detectIt = DETECTION_KNOWN_GAP.has(fx.name) ? it.fails : it;
  detectIt('is reported as a backdoor with the planted target flagged (exit code 1)', () => {
    expect(run.report?.verdict, run.stderr).toBe('backdoor');
    expect(run.code).toBe(1);
    expect(run.report!.detection!.flagged).toContain(fx.attack!.target);
  });

  it('prunes prefixes of the reported Shapley order', () => {
    const r = run.report!;
    let before: string[] = [];
    for (const round of r.repair!.rounds) {
      for (const target of round.targets) {
        const est = r.shapley.find((s) => s.round === round.round && s.target === target)!;
        const order = est.players.map(playerKey).filter((k) => !before.includes(k));
        const pruned = round.pruned.map(playerKey);
        if (round.targets.length === 1) expect(order.slice(0, pruned.length)).toEqual(pruned);
      }
      before = [...before, ...round.pruned.map(playerKey)];
    }
    if (r.repair!.status === 'repaired') expect(r.repair!.pruned.map(playerKey)).toEqual(before);
  });

  const repairIt = REPAIR_KNOWN_GAP.has(fx.name) || DETECTION_KNOWN_GAP.has(fx.name) ? it.fails : it;
  repairIt('is repaired: real-trigger ASR ≤ 5% and clean accuracy drop ≤ 1 point on real test images', async () => {
    expect(run.report!.repair!.status).toBe('repaired');
    expect(run.repairedDir).not.toBeNull();
    const data = heldOut(fx.dataset);
    const original = await loadModelFromDisk(join(MODELS, fx.path));
    const repaired = await loadModelFromDisk(join(run.repairedDir!, 'model.json'));
    const asrBefore = attackSuccessRate(original, data, fx.attack!.trigger, fx.attack!.target);
    const asrAfter = attackSuccessRate(repaired, data, fx.attack!.trigger, fx.attack!.target);
    const accBefore = accuracy(original, data);
    const accAfter = accuracy(repaired, data);
    expect(asrBefore).toBeGreaterThan(0.9);
    expect(asrAfter).toBeLessThanOrEqual(0.05);
    expect(accBefore - accAfter).toBeLessThanOrEqual(0.01);
  });
});
