// `npm run bench:guard -- [--half tuning|held-out] [--few-shot n] [--only name,...] [--json out.json]`: calibrates
// the pruning guard. For every model, candidate prunes (prefixes of the scan's Shapley order, and random player
// sets of growing size, so that some cost real accuracy) are read by the guard on the images the scan's guard
// reads (data-free: the model's own synthetic guard images; with --few-shot n, the used part of a trusted
// sample of n real images per class, as the few-shot scan splits it) and measured on real test images. Prints
// each candidate's guard reading against its real accuracy drop (a scatter plot), and how a threshold on the
// reading separates prunes costing ≤ 0.5 pt (must pass) from prunes costing ≥ 2 pt (must be refused).
import { writeFileSync } from 'node:fs';
import { Budget } from '../src/core/budget.ts';
import { loadModel } from '../src/core/model/load.ts';
import { describeModel, playerLayers } from '../src/core/model/model-info.ts';
import { prunedWeights } from '../src/core/model/prune-weights.ts';
import { scanModel } from '../src/core/scan/scan.ts';
import { PlayerSet, playerKey } from '../src/core/stages/players.ts';
import { argmaxOf } from '../src/core/stages/repair/prune.ts';
import { TailEvaluator } from '../src/core/stages/shapley/backdoor-game.ts';
import { synthesize, SYNTH_DEFAULTS } from '../src/core/stages/synthesis/synth.ts';
import { initWasmBackend } from '../src/core/tfjs/backend.ts';
import { readAndDispose } from '../src/core/tfjs/tensors.ts';
import { Rng } from '../src/core/util/rng.ts';
import { readModelFiles } from '../src/node/read-model.ts';
import { nodeWasmPath } from '../src/node/wasm-path.ts';
import { accuracy } from '../test/data/evaluate.ts';
import { benchModels, cliArg, testSet, benchSample, type BenchModel } from './zoo.ts';
import { prepare } from '../src/core/scan/context.ts';
import { stageConfigs, type ScanOptions } from '../src/core/scan/options.ts';
import { ReportBuilder } from '../src/core/scan/report-builder.ts';
import type { LoadedModel } from '../src/core/model/loaded-model.ts';

export interface GuardPoint {
  model: string;
  kind: 'shapley' | 'random';
  pruned: number;
  realDrop: number;
  probabilityDrop: number;
  agreement: number;
}

/** The guard's readings (mean probability drop of the original class, agreement) for each coalition. */
function readings(tail: TailEvaluator, coalitions: Uint8Array[]): { probabilityDrop: number; agreement: number }[] {
  const full = new Uint8Array(tail.players.size).fill(1);
  const all = readAndDispose(tail.probabilities([full, ...coalitions])) as Float32Array;
  const rows = tail.rows;
  const K = all.length / rows / (coalitions.length + 1);
  const argmax = (at: number) => argmaxOf(all, at, K);
  const base = Array.from({ length: rows }, (_, r) => argmax(r * K));
  return coalitions.map((_, j) => {
    let drop = 0;
    let agree = 0;
    for (let r = 0; r < rows; r++) {
      const at = ((j + 1) * rows + r) * K;
      drop += Math.max(0, all[r * K + base[r]!]! - all[at + base[r]!]!);
      if (argmax(at) === base[r]) agree++;
    }
    return { probabilityDrop: drop / rows, agreement: agree / rows };
  });
}

export async function calibrate(m: BenchModel, fewShot = 0): Promise<GuardPoint[]> {
  const { files, entry } = await readModelFiles(m.path);
  const inputRange = m.inputRange[1] === 255 ? { inputRange: m.inputRange } : {};
  const sample = fewShot > 0 ? { cleanSample: await benchSample(m.dataset, fewShot, 1) } : {};
  const options = { entry, seed: 1, toolVersion: 'bench', maxEvals: 400_000, budgetSeconds: 100_000, ...inputRange, ...sample };
  const { report } = await scanModel(files, options);
  const loaded = await loadModel(files, entry);
  const info = describeModel(loaded.model);
  info.graph.inputRange = m.inputRange;
  const set = new PlayerSet(info, playerLayers(info));
  const tail = new TailEvaluator(info, set, fewShot > 0 ? await sampleGuard(files, options) : syntheticGuard(info));
  const data = testSet(m.dataset);
  const scale = m.inputRange[1];
  const accBefore = accuracy(loaded.model, data, scale);
  const keyToIndex = new Map(set.players.map((p, i) => [playerKey(p), i]));
  const shapleyOrder = (report.shapley[0]?.players ?? []).map((p) => keyToIndex.get(playerKey(p))!);
  const cap = Math.max(1, Math.floor(set.size * 0.1));
  const candidates: { kind: GuardPoint['kind']; players: number[] }[] = [];
  for (let k = 1; k <= Math.min(cap, shapleyOrder.length, 6); k++) candidates.push({ kind: 'shapley', players: shapleyOrder.slice(0, k) });
  const rng = new Rng(7);
  for (const k of [1, 2, 4, cap, 2 * cap, 4 * cap].filter((x, i, a) => x <= set.size / 2 && a.indexOf(x) === i)) {
    for (let t = 0; t < 2; t++) candidates.push({ kind: 'random', players: rng.permutation(set.size).slice(0, k) });
  }
  const coalitions = candidates.map((c) => Uint8Array.from({ length: set.size }, (_, i) => (c.players.includes(i) ? 0 : 1)));
  const read = readings(tail, coalitions);
  const points: GuardPoint[] = [];
  for (const [i, c] of candidates.entries()) {
    const changed = prunedWeights(
      loaded,
      loaded.model,
      c.players.map((k) => set.players[k]!),
      set.grids,
    );
    const pruned = (await loadModel(await loaded.write(changed), entry)).model;
    points.push({
      model: m.name,
      kind: c.kind,
      pruned: c.players.length,
      realDrop: accBefore - accuracy(pruned, data, scale),
      ...read[i]!,
    });
    pruned.dispose();
  }
  tail.dispose();
  loaded.model.dispose();
  return points;
}

/** The data-free scan's guard images: synthesized from the model (its first start). */
function syntheticGuard(info: ReturnType<typeof describeModel>): Float32Array {
  return synthesize(info, [0, 1], SYNTH_DEFAULTS, new Rng(1).fork(1), new Budget(1e6, 1e9).stage(1), 64).guard.images;
}

/** The few-shot scan's guard images: the trusted sample's used part, split as the scan splits it (scan/context.ts). */
async function sampleGuard(files: ReadonlyMap<string, Uint8Array>, options: ScanOptions): Promise<Float32Array> {
  const now = () => performance.now();
  const out = new ReportBuilder(options, stageConfigs(options), now);
  let loaded: LoadedModel | undefined;
  try {
    const ctx = await prepare(files, options, out, now, (x) => (loaded = x));
    return ctx.fewShot!.use.images.slice();
  } finally {
    loaded?.model.dispose();
  }
}

/** The scatter plot and the separation a threshold on the probability drop achieves. */
export function guardTables(points: GuardPoint[]): string {
  const out: string[] = ['#### Pruning guard: its reading on the guard images against the real accuracy drop', ''];
  const width = 60;
  const height = 16;
  const maxX = Math.max(0.05, ...points.map((p) => p.realDrop));
  const maxY = Math.max(0.05, ...points.map((p) => p.probabilityDrop));
  const grid = Array.from({ length: height }, () => Array<string>(width).fill(' '));
  for (const p of points) {
    const x = Math.min(width - 1, Math.max(0, Math.round((Math.max(0, p.realDrop) / maxX) * (width - 1))));
    const y = Math.min(height - 1, Math.round((p.probabilityDrop / maxY) * (height - 1)));
    grid[height - 1 - y]![x] = p.kind === 'shapley' ? 'o' : '+';
  }
  out.push('```', `guard reading (mean probability drop, up to ${maxY.toFixed(2)}) ↑   o = Shapley prefix, + = random players`);
  for (const row of grid) out.push(`|${row.join('')}`);
  out.push(`+${'-'.repeat(width)}→ real accuracy drop (up to ${(maxX * 100).toFixed(1)} pt)`, '```', '');
  out.push('| threshold | prunes ≤ 0.5 pt that pass | prunes ≥ 2 pt that are refused |', '|---|---|---|');
  const cheap = points.filter((p) => p.realDrop <= 0.005);
  const costly = points.filter((p) => p.realDrop >= 0.02);
  for (const t of [0.01, 0.02, 0.03, 0.05, 0.08, 0.12]) {
    out.push(
      `| ${t} | ${cheap.filter((p) => p.probabilityDrop <= t).length}/${cheap.length} | ${costly.filter((p) => p.probabilityDrop > t).length}/${costly.length} |`,
    );
  }
  out.push('', '| agreement at least | prunes ≤ 0.5 pt that pass | prunes ≥ 2 pt that are refused |', '|---|---|---|');
  for (const t of [0.98, 0.95, 0.9]) {
    out.push(
      `| ${t} | ${cheap.filter((p) => p.agreement >= t).length}/${cheap.length} | ${costly.filter((p) => p.agreement < t).length}/${costly.length} |`,
    );
  }
  return out.join('\n');
}

if (process.argv[1]?.endsWith('guard-calibration.ts')) {
  const arg = cliArg;
  await initWasmBackend({ wasmPath: nodeWasmPath() });
  const half = arg('half') ?? 'tuning';
  const only = arg('only')?.split(',');
  const fewShot = Number(arg('few-shot') ?? 0);
  const points: GuardPoint[] = [];
  for (const m of benchModels().filter((x) => x.half === half && x.attack !== null && (only === undefined || only.includes(x.name)))) {
    const got = await calibrate(m, fewShot);
    points.push(...got);
    console.error(
      `${m.name}: ${got.map((p) => `${p.kind[0]}${p.pruned} ${(p.realDrop * 100).toFixed(1)}pt/${p.probabilityDrop.toFixed(3)}/${p.agreement.toFixed(2)}`).join('  ')}`,
    );
    if (arg('json')) writeFileSync(arg('json')!, JSON.stringify(points, null, 1));
  }
  console.log(guardTables(points));
}
