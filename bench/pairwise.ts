// `npm run bench:pairs -- [--seeds 1,2] [--half tuning|held-out] [--only name,...] [--datasets mnist,...] [--few-shot n] [--all-to-one]
// [--json out.json]`: the pairwise trigger reverse (issue 16) measured offline of the scan. Per model, the
// images of the scan's first start (synthetic, or with --few-shot the trusted sample's real images where the
// model calls them their class), then a trigger reversed for every ordered source → target pair on the
// source's images alone (`ReverseScope.pairs`); per source its cheapest target, the cheapest mapping over all
// sources (stages/detection/pairs.ts) and how far each assigned pair's trigger carries that mapping to the
// other classes. Run on the all-to-all fixtures, the clean zoo models of the same datasets and (--all-to-one)
// the all-to-one ones, so the scan's rule is chosen on these numbers.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { prepare } from '../src/core/scan/context.ts';
import { stageConfigs } from '../src/core/scan/options.ts';
import { ReportBuilder } from '../src/core/scan/report-builder.ts';
import { synthesizeStep } from '../src/core/scan/steps.ts';
import { pairBases, pairCheck } from '../src/core/scan/pair-check.ts';
import { median } from '../src/core/stages/detection/detect.ts';
import { allToAllScore, cheapestMapping, universality, type PairTransfer } from '../src/core/stages/detection/pairs.ts';
import { initWasmBackend } from '../src/core/tfjs/backend.ts';
import type { LoadedModel } from '../src/core/model/loaded-model.ts';
import { readModelFiles } from '../src/node/read-model.ts';
import { nodeWasmPath } from '../src/node/wasm-path.ts';
import type { AllToAllZooEntry, Half } from '../tools/fixtures/zoo.ts';
import { predict } from '../src/core/stages/verification/verify.ts';
import { stamp, type Trigger } from '../test/data/triggers.ts';
import { benchModels, benchScanOptions, cliArg, parseOverrides, benchSample, ZOO_DIR, type BenchModel, type Overrides } from './zoo.ts';

export interface PairRun {
  model: string;
  seed: number;
  half: Half;
  kind: 'all-to-all' | 'all-to-one' | 'clean';
  /** The planted mapping (source → target; all-to-one: the target for every source), null for a clean model. */
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
  /** The cheapest mapping (stages/detection/pairs.ts) and its mean log ratio to the row medians. */
  assigned: { mapping: number[]; meanLogRatio: number };
  /**
   * Per source s, its assigned pair's trigger stamped on the other classes' images (neither s nor its target):
   * the share sent to their own assigned target ("follows": one trigger, a target per class, as an all-to-all
   * trigger does), to s's target (a universal trigger into an easy class), or left in their class.
   */
  transfer: PairTransfer[];
  /** The all-to-all check's score over `transfer` (allToAllScore), against ALL_TO_ALL_DEFAULTS.minScore. */
  score: number;
  /**
   * into[s][t]: pair s → t's trigger stamped on the bases of every class but s and t, the share sent to t.
   * A planted all-to-one trigger works on any class; a clean pair trigger is fitted to its source.
   */
  into: number[][];
  /** Per target: the median over sources of `into[s][t]` (how universally the pair triggers into it carry). */
  universal: number[];
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
  dataset: BenchModel['dataset'];
  inputRange: [number, number];
  half: Half;
  /** An all-to-all fixture's mapping, an all-to-one fixture's target (`--all-to-one`), or null for a clean model. */
  attack: { trigger: Trigger; mapping: number[] } | { trigger: Trigger; target: number } | null;
}

interface PairSettings {
  maxEvals: number;
  overrides: Overrides;
  /** Only what the synthetic images carry of the planted trigger, no reverse (`--planted-only`). */
  plantedOnly: boolean;
  /** Real images per class drawn as the scan's few-shot sample (`--few-shot`), used as the pairs' bases; 0: synthetic. */
  fewShot: number;
}

async function pairModel(
  { name, path, dataset, inputRange, half, attack }: PairModel,
  seed: number,
  { maxEvals, overrides, plantedOnly, fewShot }: PairSettings,
): Promise<PairRun> {
  const { files, entry } = await readModelFiles(path);
  const sample = fewShot > 0 ? { cleanSample: await benchSample(dataset, fewShot, seed) } : {};
  const options = { ...benchScanOptions(entry, seed, maxEvals, inputRange, overrides), ...sample };
  const now = () => performance.now();
  const out = new ReportBuilder(options, stageConfigs(options), now);
  let loaded: LoadedModel | undefined;
  try {
    const ctx = await prepare(files, options, out, now, (x) => (loaded = x));
    const first = synthesizeStep(ctx, ctx.cfg.synthesis.starts[0]!);
    // Few-shot: the bases the scan's all-to-all check takes (real images where the model calls them their class).
    const synth = { ...first, rev: ctx.fewShot === null ? first.rev : pairBases(ctx, first).bases };
    const K = ctx.info.classes;
    const mapping = attack === null ? null : 'mapping' in attack ? attack.mapping : Array.from({ length: K }, () => attack.target);
    let plantedOnSynth: number | null = null;
    let plantedAway: number | null = null;
    if (attack !== null && mapping !== null) {
      const got = predict(ctx.info.graph, stamp(synth.rev.images, ctx.info.shape, attack.trigger), ctx.info.shape, ctx.plan.passRows);
      plantedOnSynth = got.filter((p, i) => p === mapping[synth.rev.labels[i]!]).length / got.length;
      plantedAway = got.filter((p, i) => p !== synth.rev.labels[i]).length / got.length;
    }
    const kind = attack === null ? 'clean' : 'mapping' in attack ? 'all-to-all' : 'all-to-one';
    const base = { model: name, seed, half, kind, mapping, plantedOnSynth, plantedAway } as const;
    const none = {
      norms: [],
      cheapest: [],
      assigned: { mapping: [], meanLogRatio: NaN },
      transfer: [],
      score: NaN,
      into: [],
      universal: [],
    };
    if (plantedOnly) return { ...base, ...none, evaluations: ctx.budget.evaluations, steps: 0, stoppedBy: 'none' };
    // The scan's own search (steps.ts pairCheck), so the rule is chosen on what the scan will measure.
    const { rev, norms, mapping: assignedMapping, transfer } = pairCheck(ctx, synth.rev);
    const { into, universal } = universality(ctx.info.graph, ctx.info.shape, synth.rev, rev.triggers, K, ctx.plan.passRows);
    const assigned = { mapping: assignedMapping, meanLogRatio: cheapestMapping(norms).meanLogRatio };
    return {
      ...base,
      norms,
      cheapest: cheapestTargets(norms),
      assigned,
      transfer,
      score: allToAllScore(transfer.map((x) => x.followsMedian)),
      into,
      universal,
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
  const datasets = cliArg('datasets')?.split(',');
  const maxEvals = Number(cliArg('max-evals') ?? 1_500_000);
  const a2aPath = join(ZOO_DIR, 'all-to-all.json');
  const a2a = existsSync(a2aPath) ? (JSON.parse(readFileSync(a2aPath, 'utf8')) as AllToAllZooEntry[]) : [];
  const models: PairModel[] = [
    ...a2a.map((m) => ({ ...m, path: join(ZOO_DIR, m.path) })),
    ...benchModels()
      .filter((m) => m.attack === null || process.argv.includes('--all-to-one'))
      .map((m) => ({ ...m, attack: m.attack && { trigger: m.attack.trigger, target: m.attack.target } })),
  ]
    .filter((m) => (half === undefined || m.half === half) && (only === undefined || only.includes(m.name)))
    .filter((m) => datasets === undefined || datasets.includes(m.dataset));
  const settings: PairSettings = {
    maxEvals,
    overrides: parseOverrides(cliArg('set')),
    plantedOnly: process.argv.includes('--planted-only'),
    fewShot: Number(cliArg('few-shot') ?? 0),
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
        `${r.model} s${seed} ${r.mapping === null ? 'clean' : `${r.kind} planted-on-synth ${f(r.plantedOnSynth!)} away ${f(r.plantedAway!)}`} mapping hits ${hits}; cheapest/row median ${ofRow.map(f).join(' ')}; cheapest/next ${r.cheapest.map((c) => f(c.ofNext)).join(' ')}; /all ${r.cheapest.map((c) => f(c.ofAll)).join(' ')} score ${f(r.score)}; assigned ${f(r.assigned.meanLogRatio)} hits ${r.mapping === null ? '–' : r.assigned.mapping.filter((t, i) => t === r.mapping![i]).length}; follows ${r.transfer.map((x) => f(x.follows)).join(' ')} toTarget ${r.transfer.map((x) => f(x.toTarget)).join(' ')} universal ${r.universal.map(f).join(' ')} (${Math.round(r.evaluations)} evaluations, ${r.steps} steps, ${r.stoppedBy})`,
      );
      if (cliArg('json'))
        writeFileSync(
          cliArg('json')!,
          JSON.stringify(runs, (_, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 1),
        );
    }
  }
}
