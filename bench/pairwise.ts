// `npm run bench:pairs -- [--seeds 1,2] [--half tuning|held-out] [--only name,...] [--json out.json]`: the
// pairwise trigger reverse (issue 16) measured offline of the scan. Per model, the synthetic images of the
// scan's first start, then a trigger reversed for every ordered source → target pair on the source's images
// alone (`ReverseScope.pairs`), and per source its cheapest target: an all-to-all backdoor should make each
// source's planted target its cheapest, far below the model's typical pair. Run on the all-to-all fixtures
// and on the clean zoo models of the same datasets, the rule the scan will use is chosen on these numbers.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { prepare } from '../src/core/scan/context.ts';
import { stageConfigs } from '../src/core/scan/options.ts';
import { ReportBuilder } from '../src/core/scan/report-builder.ts';
import { synthesizeStep } from '../src/core/scan/steps.ts';
import { median } from '../src/core/stages/detection/detect.ts';
import { reverseTriggers } from '../src/core/stages/trigger/reverse.ts';
import { initWasmBackend } from '../src/core/tfjs/backend.ts';
import type { LoadedModel } from '../src/core/model/loaded-model.ts';
import { readModelFiles } from '../src/node/read-model.ts';
import { nodeWasmPath } from '../src/node/wasm-path.ts';
import type { AllToAllZooEntry, Half } from '../tools/fixtures/zoo.ts';
import { predict } from '../src/core/stages/verification/verify.ts';
import { stamp, type Trigger } from '../test/data/triggers.ts';
import { benchModels, benchScanOptions, cliArg, parseOverrides, ZOO_DIR, type Overrides } from './zoo.ts';

export interface PairRun {
  model: string;
  seed: number;
  half: Half;
  /** The planted mapping (source → target), null for a clean model. */
  mapping: number[] | null;
  /** norms[s][t]: the pair's mask L1 norm (Infinity where it never reached success; NaN on the diagonal). */
  norms: number[][];
  /** Per source: its cheapest target, that pair's share of the source's median pair and of its next cheapest. */
  cheapest: { target: number; ofRow: number; ofNext: number; ofAll: number }[];
  /**
   * The really planted trigger stamped on the synthetic images: the share of each source's images the model
   * sends to its planted target (null for clean models). What a data-free pair reverse can find is bounded by it.
   */
  plantedOnSynth: number | null;
  /** … and the share it sends anywhere but the image's own class. */
  plantedAway: number | null;
  evaluations: number;
  steps: number;
  stoppedBy: string;
}

/** Per source row: the cheapest target and how far below the row's others and the model's pairs it is. */
export function cheapestTargets(norms: readonly (readonly number[])[]): PairRun['cheapest'] {
  const all = norms.flatMap((row, s) => row.filter((_, t) => t !== s));
  const finiteAll = all.filter(Number.isFinite);
  const medAll = median(finiteAll);
  return norms.map((row, s) => {
    const others = row.map((n, t) => ({ n, t })).filter((x) => x.t !== s);
    const sorted = [...others].sort((a, b) => a.n - b.n || a.t - b.t);
    const best = sorted[0]!;
    const next = sorted[1]?.n ?? Infinity;
    const med = median(others.map((x) => x.n).filter(Number.isFinite));
    return { target: best.t, ofRow: best.n / med, ofNext: Number.isFinite(next) ? best.n / next : 0, ofAll: best.n / medAll };
  });
}

/** A model the pairwise bench runs: an all-to-all fixture (its planted mapping and trigger) or a clean one. */
interface PairModel {
  name: string;
  path: string;
  inputRange: [number, number];
  half: Half;
  attack: { mapping: number[]; trigger: Trigger } | null;
}

interface PairSettings {
  maxEvals: number;
  overrides: Overrides;
  /** Only what the synthetic images carry of the planted trigger, no reverse (`--planted-only`). */
  plantedOnly: boolean;
}

async function pairModel(
  { name, path, inputRange, half, attack }: PairModel,
  seed: number,
  { maxEvals, overrides, plantedOnly }: PairSettings,
): Promise<PairRun> {
  const mapping = attack?.mapping ?? null;
  const { files, entry } = await readModelFiles(path);
  const options = benchScanOptions(entry, seed, maxEvals, inputRange, overrides);
  const now = () => performance.now();
  const out = new ReportBuilder(options, stageConfigs(options), now);
  let loaded: LoadedModel | undefined;
  try {
    const ctx = await prepare(files, options, out, now, (x) => (loaded = x));
    const synth = synthesizeStep(ctx, ctx.cfg.synthesis.starts[0]!);
    const K = ctx.info.classes;
    let plantedOnSynth: number | null = null;
    let plantedAway: number | null = null;
    if (attack !== null) {
      const got = predict(ctx.info.graph, stamp(synth.rev.images, ctx.info.shape, attack.trigger), ctx.info.shape, ctx.plan.passRows);
      plantedOnSynth = got.filter((p, i) => p === attack.mapping[synth.rev.labels[i]!]).length / got.length;
      plantedAway = got.filter((p, i) => p !== synth.rev.labels[i]).length / got.length;
    }
    const base = { model: name, seed, half, mapping, plantedOnSynth, plantedAway };
    if (plantedOnly) return { ...base, norms: [], cheapest: [], evaluations: ctx.budget.evaluations, steps: 0, stoppedBy: 'none' };
    const pairs = Array.from({ length: K }, (_, s) => Array.from({ length: K }, (_, t) => ({ source: s, target: t })))
      .flat()
      .filter((p) => p.source !== p.target);
    const cfg = { ...ctx.cfg.triggerReverse, restarts: 0 };
    const stage = ctx.budget.stage(1, 'pairs');
    const rev = reverseTriggers(ctx.info, synth.rev, ctx.unit, cfg, ctx.rng.fork(2), stage, {
      pairs,
      rowsPerPass: ctx.plan.triggerRowsPerPass,
    });
    const norms = Array.from({ length: K }, (_, s) => Array.from({ length: K }, (_, t) => (s === t ? NaN : Infinity)));
    for (const t of rev.triggers) norms[t.source!]![t.target] = t.reached ? t.norm : Infinity;
    return {
      ...base,
      norms,
      cheapest: cheapestTargets(norms),
      evaluations: ctx.budget.evaluations,
      steps: rev.steps,
      stoppedBy: rev.stoppedBy ?? 'none',
    };
  } finally {
    loaded?.model.dispose();
  }
}

if (process.argv[1]?.endsWith('pairwise.ts')) {
  const seeds = (cliArg('seeds') ?? '1,2').split(',').map(Number);
  const half = cliArg('half');
  const only = cliArg('only')?.split(',');
  const maxEvals = Number(cliArg('max-evals') ?? 1_500_000);
  const a2aPath = join(ZOO_DIR, 'all-to-all.json');
  const a2a = existsSync(a2aPath) ? (JSON.parse(readFileSync(a2aPath, 'utf8')) as AllToAllZooEntry[]) : [];
  const models: PairModel[] = [
    ...a2a.map((m) => ({ name: m.name, path: join(ZOO_DIR, m.path), inputRange: m.inputRange, half: m.half, attack: m.attack })),
    ...benchModels()
      .filter((m) => m.attack === null)
      .map((m) => ({ name: m.name, path: m.path, inputRange: m.inputRange, half: m.half, attack: null })),
  ].filter((m) => (half === undefined || m.half === half) && (only === undefined || only.includes(m.name)));
  const settings: PairSettings = {
    maxEvals,
    overrides: parseOverrides(cliArg('set')),
    plantedOnly: process.argv.includes('--planted-only'),
  };
  await initWasmBackend({ wasmPath: nodeWasmPath() });
  const runs: PairRun[] = [];
  const f = (x: number) => x.toFixed(2);
  for (const m of models) {
    for (const seed of seeds) {
      const r = await pairModel(m, seed, settings);
      runs.push(r);
      const hits = r.mapping === null ? '–' : `${r.cheapest.filter((c, s) => c.target === r.mapping![s]).length}/${r.cheapest.length}`;
      const ofRow = r.cheapest.map((c) => c.ofRow).sort((a, b) => a - b);
      console.error(
        `${r.model} s${seed} ${r.mapping === null ? 'clean' : `a2a planted-on-synth ${f(r.plantedOnSynth!)} away ${f(r.plantedAway!)}`} mapping hits ${hits}; cheapest/row median ${ofRow.map(f).join(' ')}; cheapest/next ${r.cheapest.map((c) => f(c.ofNext)).join(' ')}; /all ${r.cheapest.map((c) => f(c.ofAll)).join(' ')} (${Math.round(r.evaluations)} evaluations, ${r.steps} steps, ${r.stoppedBy})`,
      );
      if (cliArg('json'))
        writeFileSync(
          cliArg('json')!,
          JSON.stringify(runs, (_, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 1),
        );
    }
  }
}
