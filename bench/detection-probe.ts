// `npm run bench:probe -- [--seeds 1,2,3] [--half tuning|held-out] [--only name,...] [--top 3] [--loo] [--planted-only]
// [--set stage.key=value,...] [--max-evals N] [--json out.json] [--masks]`: why detection finds or misses a backdoor,
// measured on the zoo (docs/benchmarks.md). The scan runs as usual up to detection; then, for the `--top`
// classes with the smallest triggers, how far each reversed trigger transfers to synthetic images it was not
// optimised on, and (`--loo`) whether it runs through a shortcut: how far removing the one or two players
// that matter most to it (greedy leave-one-out) takes its success, and what that costs the clean guard
// images. Before the reverse, the really planted trigger is stamped on the synthetic images: what the model
// does with it there bounds what a data-free reverse can find (`--planted-only` stops at that).
import { writeFileSync } from 'node:fs';
import { prepare } from '../src/core/scan/context.ts';
import { stageConfigs } from '../src/core/scan/options.ts';
import { ReportBuilder } from '../src/core/scan/report-builder.ts';
import { detectStep, startRuns, synthesizeStep } from '../src/core/scan/steps.ts';
import { TailEvaluator } from '../src/core/stages/shapley/backdoor-game.ts';
import { playerKey } from '../src/core/stages/players.ts';
import { initWasmBackend } from '../src/core/tfjs/backend.ts';
import { readAndDispose } from '../src/core/tfjs/tensors.ts';
import type { LoadedModel } from '../src/core/model/loaded-model.ts';
import type { ScanContext } from '../src/core/scan/context.ts';
import type { ImageBatch } from '../src/core/stages/synthesis/synth.ts';
import { predict } from '../src/core/stages/verification/verify.ts';
import { stamp } from '../test/data/triggers.ts';
import { readModelFiles } from '../src/node/read-model.ts';
import { nodeWasmPath } from '../src/node/wasm-path.ts';
import type { Half } from '../tools/fixtures/zoo.ts';
import { argmaxOf } from '../src/core/stages/repair/prune.ts';
import { otherClassRows, stampReversed } from '../src/core/stages/trigger/stamp.ts';
import { benchModels, benchScanOptions, cliArg, effective, parseOverrides, type BenchModel, type Overrides } from './zoo.ts';

export interface ProbeRow {
  model: string;
  seed: number;
  half: Half;
  planted: number | null;
  cls: number;
  rank: number;
  ratio: number;
  gap: number;
  flagged: boolean;
  /** Reversed-trigger success (argmax share) with all players, after the best one, after the best two. */
  success: [number, number, number];
  /** Mean target probability, same three points. */
  value: [number, number, number];
  /** Mean drop of the original class's probability on the clean guard images, after one and two. */
  drop: [number, number];
  players: string[];
  /**
   * Transfer: the reversed trigger's success on the D_rev images of other classes (8 of them its
   * optimisation rows), and on the fresh D_ver + D_guard images it never saw.
   */
  transferRev: number;
  transferFresh: number;
  /**
   * The really planted trigger stamped on the synthetic D_rev images of other classes: the share the model
   * sends to the planted target (null for clean models). Low means the synthetic images do not carry the
   * backdoor, and no trigger reverse on them can find it.
   */
  plantedOnSynth: number | null;
  /** Every class's comparable norm from each synthesis start (start × class), to weigh rules offline. */
  startNorms: number[][];
  /** Each start's synthesis: the share of images that reached the confidence target, and its steps. */
  synthesis: { confident: number; steps: number }[];
  /**
   * On the first row of a model only: every class's reversed mask from each start (start × class × pixel,
   * 3 decimals), to weigh how far masks agree across starts offline.
   */
  masks?: number[][][];
}

/** Greedy leave-one-out: the player whose removal lowers the target's mean probability most, twice. */
function probe(stamped: TailEvaluator, clean: TailEvaluator, target: number, size: number) {
  const all = new Uint8Array(size).fill(1);
  const baseProbs = readAndDispose(clean.probabilities([all])) as Float32Array;
  const K = baseProbs.length / clean.rows;
  const base = Array.from({ length: clean.rows }, (_, r) => argmaxOf(baseProbs, r * K, K));
  const score = (coalitions: Uint8Array[]) => {
    const out: { value: number; success: number }[] = [];
    for (let s = 0; s < coalitions.length; s += 16) {
      const part = coalitions.slice(s, s + 16);
      const p = readAndDispose(stamped.probabilities(part)) as Float32Array;
      for (let j = 0; j < part.length; j++) {
        let v = 0;
        let hit = 0;
        for (let r = 0; r < stamped.rows; r++) {
          const at = (j * stamped.rows + r) * K;
          v += p[at + target]!;
          if (argmaxOf(p, at, K) === target) hit++;
        }
        out.push({ value: v / stamped.rows, success: hit / stamped.rows });
      }
    }
    return out;
  };
  const drop = (c: Uint8Array) => {
    const p = readAndDispose(clean.probabilities([c])) as Float32Array;
    let d = 0;
    for (let r = 0; r < clean.rows; r++) d += Math.max(0, baseProbs[r * K + base[r]!]! - p[r * K + base[r]!]!);
    return d / clean.rows;
  };
  const start = score([all])[0]!;
  const removed: number[] = [];
  const steps = [start];
  for (let step = 0; step < 2; step++) {
    const cands: number[] = [];
    const coalitions: Uint8Array[] = [];
    for (let k = 0; k < size; k++) {
      if (removed.includes(k)) continue;
      const c = all.slice();
      for (const r of removed) c[r] = 0;
      c[k] = 0;
      cands.push(k);
      coalitions.push(c);
    }
    const scores = score(coalitions);
    let best = 0;
    for (let i = 1; i < scores.length; i++) if (scores[i]!.value < scores[best]!.value) best = i;
    removed.push(cands[best]!);
    steps.push(scores[best]!);
  }
  const c1 = all.slice();
  c1[removed[0]!] = 0;
  const c2 = c1.slice();
  c2[removed[1]!] = 0;
  return { steps, removed, drops: [drop(c1), drop(c2)] as [number, number] };
}

/** Share of `batch`'s images of other classes that the trigger sends to its target, all players kept. */
function transfer(ctx: ScanContext, batch: ImageBatch, t: { mask: Float32Array; pattern: Float32Array; target: number }): number {
  const got = predict(ctx.info.graph, stampReversed(batch, ctx.info.shape, t.mask, t.pattern, t.target), ctx.info.shape, ctx.plan.passRows);
  return got.length > 0 ? got.filter((p) => p === t.target).length / got.length : NaN;
}

const join = (a: ImageBatch, b: ImageBatch): ImageBatch => {
  const images = new Float32Array(a.images.length + b.images.length);
  images.set(a.images);
  images.set(b.images, a.images.length);
  const labels = new Int32Array(a.count + b.count);
  labels.set(a.labels);
  labels.set(b.labels, a.count);
  return { images, labels, count: a.count + b.count };
};

interface ProbeSettings {
  maxEvals: number;
  /** Classes probed per model, smallest trigger first. */
  top: number;
  loo: boolean;
  plantedOnly: boolean;
  /** Keep every class's mask from every start in the rows (`--masks`). */
  dumpMasks: boolean;
  overrides: Overrides;
}

async function probeModel(
  m: BenchModel,
  seed: number,
  { maxEvals, top, loo, plantedOnly, dumpMasks, overrides }: ProbeSettings,
): Promise<ProbeRow[]> {
  const { files, entry } = await readModelFiles(m.path);
  const options = benchScanOptions(entry, seed, maxEvals, m.inputRange, overrides);
  const now = () => performance.now();
  const out = new ReportBuilder(options, stageConfigs(options), now);
  let loaded: LoadedModel | undefined;
  const rows: ProbeRow[] = [];
  try {
    const ctx = await prepare(files, options, out, now, (x) => (loaded = x));
    // The planted trigger is measured on the first start's images; --planted-only needs no reverse.
    const first = ctx.cfg.synthesis.starts[0]!;
    const runs = plantedOnly ? [] : startRuns(ctx);
    const synth = plantedOnly ? synthesizeStep(ctx, first) : runs[0]!.synth;
    let plantedOnSynth: number | null = null;
    if (m.attack !== null) {
      const target = m.attack.target;
      const keep = otherClassRows(synth.rev, target);
      const px = ctx.info.shape.reduce((a, b) => a * b, 1);
      const images = new Float32Array(keep.length * px);
      keep.forEach((i, j) => images.set(synth.rev.images.subarray(i * px, (i + 1) * px), j * px));
      const got = predict(ctx.info.graph, stamp(images, ctx.info.shape, m.attack.trigger), ctx.info.shape, ctx.plan.passRows);
      plantedOnSynth = got.filter((p) => p === target).length / keep.length;
    }
    if (plantedOnly) {
      console.error(`${m.name} s${seed} planted-on-synth ${plantedOnSynth?.toFixed(2)} synthesis confident ${synth.confident.toFixed(2)}`);
      return rows;
    }
    detectStep(ctx, runs);
    const clean = new TailEvaluator(ctx.info, ctx.players, synth.guard.images);
    const classes = [...ctx.report.detection!.classes].sort((a, b) => a.comparableNorm - b.comparableNorm || a.class - b.class);
    for (const [rank, c] of classes.slice(0, top).entries()) {
      const own = runs[c.start]!;
      const t = own.rev.triggers.find((x) => x.target === c.class)!;
      const stamped = new TailEvaluator(ctx.info, ctx.players, stampReversed(own.synth.rev, ctx.info.shape, t.mask, t.pattern, t.target));
      const none = { value: NaN, success: NaN };
      const p = loo
        ? probe(stamped, clean, t.target, ctx.players.size)
        : { steps: [none, none, none], removed: [], drops: [NaN, NaN] as [number, number] };
      stamped.dispose();
      rows.push({
        model: m.name,
        seed,
        half: m.half,
        planted: m.attack?.target ?? null,
        cls: c.class,
        rank,
        ratio: c.normRatio,
        gap: c.gap,
        flagged: c.flagged,
        success: p.steps.map((s) => s.success) as [number, number, number],
        value: p.steps.map((s) => s.value) as [number, number, number],
        drop: p.drops,
        players: p.removed.map((k) => playerKey(ctx.players.players[k]!)),
        transferRev: transfer(ctx, own.synth.rev, t),
        transferFresh: transfer(ctx, join(own.synth.ver, own.synth.guard), t),
        plantedOnSynth,
        startNorms: ctx.report.detection!.starts.map((st) => st.comparableNorms),
        synthesis: runs.map((r) => ({ confident: r.synth.confident, steps: r.synth.steps })),
        ...(rank === 0 && dumpMasks
          ? { masks: runs.map((r) => r.rev.triggers.map((x) => Array.from(x.mask, (v) => Math.round(v * 1000) / 1000))) }
          : {}),
      });
    }
    clean.dispose();
  } finally {
    loaded?.model.dispose();
  }
  return rows;
}

if (process.argv[1]?.endsWith('detection-probe.ts')) {
  const arg = cliArg;
  const seeds = (arg('seeds') ?? '1,2,3').split(',').map(Number);
  const half = arg('half');
  const only = arg('only')?.split(',');
  const settings: ProbeSettings = {
    maxEvals: Number(arg('max-evals') ?? 400_000),
    top: Number(arg('top') ?? 3),
    loo: process.argv.includes('--loo'),
    plantedOnly: process.argv.includes('--planted-only'),
    dumpMasks: process.argv.includes('--masks'),
    overrides: parseOverrides(arg('set')),
  };
  await initWasmBackend({ wasmPath: nodeWasmPath() });
  const models = benchModels().filter(
    (m) =>
      (half === undefined || m.half === half) &&
      (only === undefined || only.includes(m.name)) &&
      (m.attack === null || (effective(m) && !m.attack.trigger.kind.startsWith('blend'))),
  );
  const rows: ProbeRow[] = [];
  const f = (x: number) => x.toFixed(2);
  for (const m of models) {
    for (const seed of seeds) {
      for (const r of await probeModel(m, seed, settings)) {
        rows.push(r);
        const kind = r.planted === null ? 'clean' : r.cls === r.planted ? 'PLANTED' : 'other';
        console.error(
          `${r.model} s${seed} #${r.rank} c${r.cls} ${kind} ratio ${f(r.ratio)} gap ${f(r.gap)}${r.flagged ? ' F' : ''} succ ${r.success.map(f).join('→')} v ${r.value.map(f).join('→')} drop ${r.drop.map(f).join(',')} ${r.players.join(' ')} transfer rev ${f(r.transferRev)} fresh ${f(r.transferFresh)} planted-on-synth ${r.plantedOnSynth === null ? '–' : f(r.plantedOnSynth)}`,
        );
        // Rewritten after every row, so a run stopped early keeps what it measured.
        if (arg('json')) writeFileSync(arg('json')!, JSON.stringify(rows, null, 1));
      }
    }
  }
}
