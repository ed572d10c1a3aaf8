// `npm run bench`: the scan on every fixture (time and evaluations per stage, peak memory, real-data ASR
// and accuracy before/after), baselines (CLP, random pruning of as many channels), false positives,
// wasm vs cpu forward speed, and the Shapley saving of threshold + ε-greedy. Prints Markdown tables.
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import type * as tfl from '@tensorflow/tfjs-layers';
import { initWasmBackend } from '../../src/core/backend.ts';
import { BackdoorGame, TailEvaluator } from '../../src/core/backdoor-game.ts';
import { Budget } from '../../src/core/budget.ts';
import { describeModel, playerLayers } from '../../src/core/model-info.ts';
import { loadTfjsModel, writeTfjsModel, type TfjsLoadedModel as LoadedModel } from '../../src/core/model-io.ts';
import { PlayerSet, type Player } from '../../src/core/players.ts';
import { prunedWeights } from '../../src/core/prune-weights.ts';
import { Rng } from '../../src/core/rng.ts';
import { scanModel } from '../../src/core/scan.ts';
import { estimateShapley, SHAPLEY_DEFAULTS } from '../../src/core/shapley.ts';
import { stampReversed } from '../../src/core/stamp.ts';
import { synthesize, SYNTH_DEFAULTS } from '../../src/core/synth.ts';
import { reverseTriggers, TRIGGER_DEFAULTS } from '../../src/core/trigger.ts';
import { nodeWasmPath } from '../../src/node/wasm-path.ts';
import { readModelFiles } from '../../src/node/read-model.ts';
import { accuracy, attackSuccessRate } from '../data/evaluate.ts';
import { heldOut, manifest, MODELS } from '../helpers/fixtures.ts';
import type { ManifestEntry } from '../fixtures/specs.ts';
import { clpChannels } from './clp.ts';
import { benchKeras } from './keras.ts';

const only = process.argv.slice(2);
const pct = (x: number | null) => (x === null ? '–' : `${(x * 100).toFixed(1)}%`);
const wasmHeap = () => (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.buffer.byteLength;

async function prunedModel(loaded: LoadedModel, pruned: Player[], grids?: ReadonlyMap<string, [number, number, number]>): Promise<tfl.LayersModel> {
  return (await loadTfjsModel(writeTfjsModel(loaded, prunedWeights(loaded, loaded.model, pruned, grids)), loaded.entry)).model;
}

function realMetrics(model: tfl.LayersModel, fx: ManifestEntry, data: ReturnType<typeof heldOut>) {
  return { acc: accuracy(model, data), asr: fx.attack ? attackSuccessRate(model, data, fx.attack.trigger, fx.attack.target) : null };
}

await initWasmBackend({ wasmPath: nodeWasmPath() });
const scanRows: string[] = [];
const stageRows: string[] = [];
const baselineRows: string[] = [];
const speedRows: string[] = [];
for (const fx of manifest()) {
  if (only.length > 0 && !only.includes(fx.name)) continue;
  const path = join(MODELS, fx.path);
  const { files, entry } = await readModelFiles(path);
  const data = heldOut(fx.dataset);
  let peakTensorBytes = 0;
  const t0 = performance.now();
  const { report, repaired } = await scanModel(files, {
    entry,
    seed: 1,
    toolVersion: 'bench',
    onProgress: () => (peakTensorBytes = Math.max(peakTensorBytes, tf.memory().numBytes)),
  });
  const wall = (performance.now() - t0) / 1000;
  const loaded = await loadTfjsModel(files, entry);
  const before = realMetrics(loaded.model, fx, data);
  const after = repaired ? realMetrics((await loadTfjsModel(repaired, entry)).model, fx, data) : null;
  scanRows.push(
    `| ${fx.name} | ${report.verdict} | ${report.detection?.flagged.join(',') || '–'} | ${report.repair?.pruned.length ?? 0} | ${wall.toFixed(1)} | ${Math.round(report.budget.evaluationsUsed)} | ${(Math.max(peakTensorBytes, 0) / 2 ** 20).toFixed(0)} / ${(wasmHeap() / 2 ** 20).toFixed(0)} | ${pct(before.acc)} → ${after ? pct(after.acc) : '–'} | ${pct(before.asr)} → ${after ? pct(after.asr) : '–'} |`,
  );
  const st = report.timings.stages;
  const ev = (name: string) => report.budget.stages.filter((s) => s.name.startsWith(name)).reduce((a, s) => a + s.evaluations, 0);
  stageRows.push(
    `| ${fx.name} | ${(st['synthesis'] ?? 0).toFixed(1)} s / ${Math.round(ev('synthesis'))} | ${(st['trigger-reverse'] ?? 0).toFixed(1)} s / ${Math.round(ev('trigger-reverse'))} | ${(st['shapley'] ?? 0).toFixed(1)} s / ${Math.round(ev('shapley') + ev('pruning') + ev('recheck'))} | ${(st['verification'] ?? 0).toFixed(2)} s |`,
  );

  // Baselines on the same model: CLP, and random pruning of as many channels as ShapPruning pruned.
  const clp = clpChannels(loaded.model);
  const clpPlayers = [...clp.entries()].flatMap(([layer, cs]) => cs.map((channel) => ({ layer, channel, position: null })));
  const clpMetrics = clpPlayers.length > 0 ? realMetrics(await prunedModel(loaded, clpPlayers), fx, data) : before;
  const k = report.repair?.pruned.length ?? 0;
  let randomCell = '–';
  if (k > 0) {
    // As many players as ShapPruning pruned, drawn at random from the same player layers.
    const described = describeModel(loaded.model);
    const set = new PlayerSet(described, playerLayers(described));
    const pick = new Rng(99).permutation(set.size).slice(0, k).map((i) => set.players[i]!);
    const m = realMetrics(await prunedModel(loaded, pick, set.grids), fx, data);
    randomCell = `${pct(m.acc)} / ${pct(m.asr)}`;
  }
  baselineRows.push(
    `| ${fx.name} | ${pct(before.acc)} / ${pct(before.asr)} | ${after ? `${pct(after.acc)} / ${pct(after.asr)}` : '(no repair)'} | ${clpPlayers.length} ch: ${pct(clpMetrics.acc)} / ${pct(clpMetrics.asr)} | ${randomCell} |`,
  );

  // wasm vs cpu forward speed, batch 64.
  const [h, w, c] = report.model?.inputShape ?? [28, 28, 1];
  const x = tf.randomUniform([64, h, w, c]);
  const time = async (backend: string, reps: number) => {
    await tf.setBackend(backend);
    const m = (await loadTfjsModel(files, entry)).model;
    (m.predict(x) as tf.Tensor).dataSync();
    const t = performance.now();
    for (let i = 0; i < reps; i++) tf.tidy(() => (m.predict(x) as tf.Tensor).dataSync());
    m.dispose();
    return (performance.now() - t) / reps;
  };
  const tw = await time('wasm', 20);
  const tc = await time('cpu', 3);
  await tf.setBackend('wasm');
  x.dispose();
  speedRows.push(`| ${fx.name} | ${tw.toFixed(1)} ms | ${tc.toFixed(0)} ms | ${(tc / tw).toFixed(0)}× |`);
  loaded.model.dispose();
  console.error(`done ${fx.name}`);
}

/** Prints one Markdown table: a heading, the header row, its separator and the rows. */
function printTable(title: string, header: string[], rows: string[]): void {
  console.log(`\n### ${title}\n`);
  console.log(`| ${header.join(' | ')} |`);
  console.log(`|${header.map(() => '---').join('|')}|`);
  rows.forEach((r) => console.log(r));
}

printTable('Scan (seed 1, default budget 60 s)', ['fixture', 'verdict', 'flagged', 'pruned', 'wall s', 'evaluations', 'peak MiB (tensors / wasm heap)', 'real accuracy before → after', 'real-trigger ASR before → after'], scanRows);
printTable('Time / evaluations per stage', ['fixture', 'synthesis', 'trigger reverse', 'Shapley + pruning + recheck', 'verification'], stageRows);
printTable('Baselines on real test data (accuracy / real-trigger ASR)', ['fixture', 'original', 'ShapPruning', 'CLP (u = 3)', 'random pruning, same count'], baselineRows);
printTable('Forward pass, batch 64', ['fixture', 'wasm (SIMD)', 'cpu backend', 'speed-up'], speedRows);
if (only.length === 0 || only.includes('keras')) {
  printTable('Keras files (seed 1, default budget 60 s; accuracy on the first 2000 real test images)', ['source', 'file', 'format', 'parameters', 'load', 'real accuracy', 'verdict', 'scan wall'], await benchKeras());
}

// The Shapley saving on mnist-badnets: evaluations to reach the reference top-k.
if (only.length === 0 || only.includes('mnist-badnets') || only.includes('shapley')) {
  const { files, entry } = await readModelFiles(resolve(MODELS, 'mnist-badnets/model.json'));
  const loaded = await loadTfjsModel(files, entry);
  const info = describeModel(loaded.model);
  const players = new PlayerSet(info, playerLayers(info));
  const budget = new Budget(1e9, Infinity);
  const rng = new Rng(1);
  const synth = synthesize(info, [0, 1], SYNTH_DEFAULTS, rng.fork(1), budget.stage(1));
  const rev = reverseTriggers(info, synth.rev, [0, 1], TRIGGER_DEFAULTS, rng.fork(2), budget.stage(1), { targets: [6] });
  const trig = rev.triggers[0]!;
  const tail = new TailEvaluator(info, players, stampReversed(synth.rev, info.shape, trig.mask, trig.pattern, 6));
  const game = new BackdoorGame(tail, 6);
  const topOf = (v: number[], k: number) => v.map((x, i) => [x, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, k).map(([, i]) => i).sort((a, b) => a - b).join(',');
  const plainCfg = { ...SHAPLEY_DEFAULTS, useThreshold: false, useGreedy: false, stableFor: Infinity, minPermutations: 0 };
  const reference = estimateShapley(game, { ...plainCfg, maxPermutations: 400 }, new Rng(5), new Budget(1e9, Infinity).stage(1));
  const savingRows: string[] = [];
  // "Reach": the evaluation count after which the estimate's top-k equals the reference's and stays so for
  // the rest of a 200-permutation run. One run is noisy (a lucky plain run can hold the right top-k after
  // a few permutations), so each estimator runs with 9 seeds and the medians are compared.
  const ks = [1, 2, 3];
  const refs = ks.map((k) => topOf(reference.values, k));
  const reach = (cfg: typeof plainCfg, seed: number) => {
    const since: (number | null)[] = ks.map(() => null);
    estimateShapley(game, { ...cfg, topK: 3, stableFor: Infinity, minPermutations: 0, maxPermutations: 200 }, new Rng(seed), new Budget(1e9, Infinity).stage(1), (values, _p, evals) => {
      ks.forEach((k, i) => {
        if (topOf(values, k) === refs[i]) since[i] ??= evals;
        else since[i] = null;
      });
    });
    return since.map((x) => x ?? Infinity);
  };
  const seeds = Array.from({ length: 9 }, (_, i) => 6 + i);
  const plainRuns = seeds.map((sd) => reach(plainCfg, sd));
  const fastRuns = seeds.map((sd) => reach(SHAPLEY_DEFAULTS, sd));
  const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;
  ks.forEach((k, i) => {
    const p = med(plainRuns.map((r) => r[i]!));
    const f = med(fastRuns.map((r) => r[i]!));
    const cell = (x: number) => (Number.isFinite(x) ? String(Math.round(x)) : 'not reached in 200 permutations');
    savingRows.push(`| ${k} | ${refs[i]} | ${cell(p)} | ${cell(f)} | ${Number.isFinite(p) && Number.isFinite(f) ? `${(p / f).toFixed(1)}×` : '–'} |`);
  });
  printTable('Shapley saving (mnist-badnets, target 6, reference = plain sampling, 400 permutations; medians of 9 seeds)', ['k', 'reference top-k', 'plain sampling: evaluations to reach it', 'threshold + ε-greedy: evaluations to reach it', 'saving'], savingRows);
  tail.dispose();
}
