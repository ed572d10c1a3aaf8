import { beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { fixtureScanArgs, runCliShared, type CliRun } from '../helpers/cli.ts';
import { manifest, MODELS } from '../helpers/fixtures.ts';
import { DATA_FREE_UNCERTIFIED } from '../../src/core/scan/steps.ts';
import { playerKey } from '../../src/core/stages/players.ts';

// Judged on REAL held-out images with the REALLY planted trigger, never on the scanner's own data.
// --budget is generous so CI's two busy cores do not turn this into a speed test (the benchmark is that).
/**
 * mnist-patch4's planted trigger reverses to a mask no smaller than the natural ones of clean models (0.27–0.30
 * of the median against a genuine CNN's 0.30): data-free detection misses it rather than flag clean models
 * (README, Limits); the opt-in head tendency leans to its planted class (test/wasm/tendency.test.ts) and flags
 * it (`npm run bench:tendency`). The bench measures it
 * over seeds (docs/benchmarks.md); the suite spends no second scan on it.
 */
const backdoored = manifest().filter((m) => m.attack !== null && m.name !== 'mnist-patch4');

/** Fixtures the pruning repair does not yet fix (see docs/threat-model.md); their detection is still tested. */
const REPAIR_KNOWN_GAP = new Set(['mnist-blended']);

describe.each(backdoored)('backdoored fixture $name', (fx) => {
  let run: CliRun;
  beforeAll(async () => {
    // report-html, sarif and e2e-clean's determinism test read the same runs.
    run = await runCliShared(fixtureScanArgs(join(MODELS, fx.path)));
  });

  it('is reported as a backdoor with the planted target flagged (exit code 1)', () => {
    expect(run.report?.verdict, run.stderr).toBe('backdoor');
    expect(run.code).toBe(1);
    expect(run.report!.detection!.flagged).toContain(fx.attack!.target);
  });

  it("prunes prefixes of the reported Shapley order (a split position's cells, in their own order, where it stood)", () => {
    const r = run.report!;
    let before: string[] = [];
    for (const round of r.repair!.rounds) {
      for (const target of round.targets) {
        const games = r.shapley.filter((s) => s.round === round.round && s.target === target);
        const est = games.find((s) => !s.refines)!;
        const cells = games.find((s) => s.refines);
        const split = cells && round.pruned.some((p) => p.position !== null && p.channel !== null) ? cells.refines!.map(playerKey) : [];
        const at = (p: { position: [number, number] | null }) => p.position?.join(',');
        const order = est.players
          .flatMap((p) => (split.includes(playerKey(p)) ? cells!.players.filter((c) => at(c) === at(p)) : [p]))
          .map(playerKey)
          .filter((k) => !before.includes(k));
        const pruned = round.pruned.map(playerKey);
        if (round.targets.length === 1) expect(order.slice(0, pruned.length)).toEqual(pruned);
      }
      before = [...before, ...round.pruned.map(playerKey)];
    }
    if (r.repair!.status === 'repaired') expect(r.repair!.pruned.map(playerKey)).toEqual(before);
  });

  // Data-free scans never claim a repair (steps.ts, DATA_FREE_UNCERTIFIED): the pruned candidate is reported
  // with the check's evidence, and nothing is written. Few-shot repairs: few-shot.test.ts, keras-format.test.ts.
  it('is not certified data-free: not deployable, nothing written, the reason says how to repair', () => {
    const r = run.report!;
    expect(r.repair!.status).toBe('not-repaired');
    expect(run.repairedDir).toBeNull();
    if (REPAIR_KNOWN_GAP.has(fx.name)) expect(r.repair!.reason).not.toBe(DATA_FREE_UNCERTIFIED);
    else {
      expect(r.repair!.reason).toBe(DATA_FREE_UNCERTIFIED);
      expect(r.repair!.check!.passed).toBe(true);
      expect(r.repair!.pruned.length).toBeGreaterThan(0);
    }
  });
});
