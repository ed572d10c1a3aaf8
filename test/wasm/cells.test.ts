import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadedModel } from '../../src/core/model/loaded-model.ts';
import { loadModel } from '../../src/core/model/load.ts';
import { prunedWeights } from '../../src/core/model/prune-weights.ts';
import { cellPrune, type CellChoice } from '../../src/core/scan/cells.ts';
import { prepare, type ScanContext } from '../../src/core/scan/context.ts';
import { stageConfigs, type ScanOptions } from '../../src/core/scan/options.ts';
import { ReportBuilder } from '../../src/core/scan/report-builder.ts';
import { recordShapley } from '../../src/core/scan/shapley-step.ts';
import { playerKey } from '../../src/core/stages/players.ts';
import { choosePrune, type PruneResult, type TargetProbe } from '../../src/core/stages/repair/prune.ts';
import { BackdoorGame, TailEvaluator } from '../../src/core/stages/shapley/backdoor-game.ts';
import { estimateShapley } from '../../src/core/stages/shapley/shapley.ts';
import { initWasmBackend } from '../../src/core/tfjs/backend.ts';
import { readModelFiles } from '../../src/node/read-model.ts';
import { nodeWasmPath } from '../../src/node/wasm-path.ts';
import { accuracy, attackSuccessRate, stampedNonTarget } from '../data/evaluate.ts';
import { loadMnist, type ImageSet } from '../data/mnist.ts';
import type { Trigger } from '../data/triggers.ts';
import { MODELS } from '../helpers/fixtures.ts';
import { reportSchemaErrors } from '../helpers/schema.ts';

// The cell stage (pruning.refineCells, scan/cells.ts; opt-in) on the real backdoored MNIST CNN, driven by
// the planted trigger itself on real digits, so what it should find is known: the 3×3 patch enters fc1
// through position 4,4, and some of that position's channels carry it.
const fx = (
  JSON.parse(readFileSync(join(MODELS, 'manifest.json'), 'utf8')) as { name: string; attack: { trigger: Trigger; target: number } }[]
).find((m) => m.name === 'mnist-badnets')!;
const { trigger, target } = fx.attack;
let files: Map<string, Uint8Array>;
let entry: string;
let loaded: LoadedModel | undefined;
let ctx: ScanContext;
let base: PruneResult;
let choice: CellChoice;
let test: ImageSet;

beforeAll(async () => {
  await initWasmBackend({ wasmPath: nodeWasmPath() });
  ({ files, entry } = await readModelFiles(join(MODELS, 'mnist-badnets/model.json')));
  // Bounded by evaluations only; the clock bound never binds.
  const options: ScanOptions = {
    entry,
    seed: 1,
    toolVersion: 'test',
    maxEvals: 200_000,
    budgetSeconds: 1e6,
    pruning: { refineCells: true },
  };
  const now = () => performance.now();
  ctx = await prepare(files, options, new ReportBuilder(options, stageConfigs(options), now), now, (m) => (loaded = m));
  // Bases: real digits 0–1999 stamped with the planted patch; the guard: 64 clean ones; the judgement: the rest.
  const all = loadMnist('test', 3000);
  const px = 28 * 28;
  const part = (from: number, n: number): ImageSet => ({
    ...all,
    count: n,
    images: all.images.slice(from * px, (from + n) * px),
    labels: all.labels.slice(from, from + n),
  });
  const stamped = stampedNonTarget(part(0, 80), trigger, target);
  const guard = part(100, 64).images;
  test = part(1000, 2000);
  const tail = new TailEvaluator(ctx.info, ctx.players, stamped);
  const est = estimateShapley(new BackdoorGame([{ tail, target }]), ctx.cfg.shapley, ctx.rng.fork(1), ctx.budget.stage(0.5));
  const order = recordShapley(ctx, ctx.players, est, { target, round: 0 });
  const probes: TargetProbe[] = [{ target, order, values: est.values, fullValue: est.fullValue, stamped: tail }];
  const clean = new TailEvaluator(ctx.info, ctx.players, guard);
  base = choosePrune(ctx.players, probes, clean, ctx.cfg.pruning, ctx.budget.stage(0.5));
  clean.dispose();
  choice = cellPrune(ctx, { players: ctx.players, probes, images: [stamped], guard, pruned: [], round: 0 }, base);
  tail.dispose();
});

afterAll(() => loaded?.model.dispose());

describe('cells (pruning.refineCells)', () => {
  it('splits the position the planted patch enters through, and values its channels in a game of their own', () => {
    const [first, cells] = ctx.report.shapley;
    expect(playerKey(first!.players[0]!)).toBe('fc1@4,4');
    expect(cells!.refines!.map(playerKey)).toEqual(['fc1@4,4']);
    // Every channel of that position and nothing else, each a cell of it.
    expect(cells!.players.map(playerKey).sort()).toEqual(
      Array.from({ length: ctx.players.grids.get('fc1')![2] }, (_, c) => `fc1@4,4:${c}`).sort(),
    );
    // A few channels carry the trigger: the top three hold most of the position's value.
    const top = cells!.players.slice(0, 3).reduce((s, p) => s + p.value, 0);
    expect(top).toBeGreaterThan(0.5 * first!.players[0]!.value);
    expect(reportSchemaErrors(JSON.parse(JSON.stringify({ ...ctx.report, verdict: 'backdoor' })))).toEqual([]);
  });

  it('prunes cells where that passes the guard at a reading no worse than the whole position', () => {
    expect(base.status).toBe('repaired');
    expect(choice.result.status).toBe('repaired');
    const pruned = choice.result.pruned.map((k) => choice.players.players[k]!);
    expect(pruned.length).toBeGreaterThan(0);
    for (const p of pruned) expect(playerKey(p)).toMatch(/^fc1@4,4:\d+$/);
    const drop = (r: PruneResult) => r.curve[r.pruned.length]!.probabilityDrop;
    expect(drop(choice.result)).toBeLessThanOrEqual(drop(base));
  });

  it('the cells written into the model remove the planted trigger from digits the stage never saw', async () => {
    const pruned = choice.result.pruned.map((k) => choice.players.players[k]!);
    const written = await loaded!.write(prunedWeights(loaded!, loaded!.model, pruned, choice.players.grids));
    const repaired = (await loadModel(written, entry)).model;
    try {
      expect(attackSuccessRate(loaded!.model, test, trigger, target)).toBeGreaterThan(0.95);
      expect(attackSuccessRate(repaired, test, trigger, target)).toBeLessThan(0.05);
      expect(accuracy(loaded!.model, test) - accuracy(repaired, test)).toBeLessThan(0.01);
    } finally {
      repaired.dispose();
    }
  });
});
