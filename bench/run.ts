// `npm run bench`: the scan on every fixture (time and evaluations per stage, peak memory, real-data ASR
// and accuracy before/after), baselines (CLP, random pruning of as many channels), false positives, the
// verdict over five seeds, the oracle pruning bound, wasm vs cpu forward speed, Keras files, ONNX files, memory, and the
// Shapley saving of threshold + ε-greedy. Prints Markdown tables.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import type * as tfl from '@tensorflow/tfjs-layers';
import { initWasmBackend } from '../src/core/tfjs/backend.ts';
import { describeModel, playerLayers } from '../src/core/model/model-info.ts';
import { loadTfjsModel } from '../src/core/model/tfjs-layers.ts';
import { PlayerSet } from '../src/core/stages/players.ts';
import { Rng } from '../src/core/util/rng.ts';
import { scanModel } from '../src/core/scan/scan.ts';
import { nodeWasmPath } from '../src/node/wasm-path.ts';
import { readModelFiles } from '../src/node/read-model.ts';
import { accuracy, attackSuccessRate } from '../test/data/evaluate.ts';
import { heldOut, manifest, MODELS } from '../test/helpers/fixtures.ts';
import type { ManifestEntry } from '../tools/fixtures/specs.ts';
import { clpPlayers } from './clp.ts';
import { prunedModel } from './pruned-model.ts';
import { ORACLE_HEADER, ORACLE_TITLE, oraclePruningRow } from './oracle-pruning.ts';
import { SEEDS, SEEDS_HEADER, SEEDS_TITLE, seedsRow } from './seeds.ts';
import { benchKeras } from './keras.ts';
import { benchOnnx } from './onnx.ts';
import { benchShapleySaving, SHAPLEY_SAVING_HEADER, SHAPLEY_SAVING_TITLE } from './shapley-saving.ts';

const only = process.argv.slice(2);
const pct = (x: number | null) => (x === null ? '–' : `${(x * 100).toFixed(1)}%`);
const wasmHeap = () => (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.buffer.byteLength;

function realMetrics(model: tfl.LayersModel, fx: ManifestEntry, data: ReturnType<typeof heldOut>) {
  return { acc: accuracy(model, data), asr: fx.attack ? attackSuccessRate(model, data, fx.attack.trigger, fx.attack.target) : null };
}

await initWasmBackend({ wasmPath: nodeWasmPath() });
const scanRows: string[] = [];
const stageRows: string[] = [];
const baselineRows: string[] = [];
const speedRows: string[] = [];
const oracleRows: string[] = [];
const seedRows: string[] = [];
for (const fx of manifest()) {
  if (only.length > 0 && !only.includes(fx.name)) continue;
  const path = join(MODELS, fx.path);
  const { files, entry } = await readModelFiles(path);
  const data = heldOut(fx.dataset);
  let peakTensorBytes = 0;
  const t0 = performance.now();
  const { report, repaired } = await scanModel(files, {
    entry,
    seed: SEEDS[0]!,
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
  const clp = clpPlayers(loaded.model);
  const clpMetrics = clp.length > 0 ? realMetrics(await prunedModel(loaded, clp), fx, data) : before;
  const k = report.repair?.pruned.length ?? 0;
  let randomCell = '–';
  if (k > 0) {
    // As many players as ShapPruning pruned, drawn at random from the same player layers.
    const described = describeModel(loaded.model);
    const set = new PlayerSet(described, playerLayers(described));
    const pick = new Rng(99)
      .permutation(set.size)
      .slice(0, k)
      .map((i) => set.players[i]!);
    const m = realMetrics(await prunedModel(loaded, pick, set.grids), fx, data);
    randomCell = `${pct(m.acc)} / ${pct(m.asr)}`;
  }
  baselineRows.push(
    `| ${fx.name} | ${pct(before.acc)} / ${pct(before.asr)} | ${after ? `${pct(after.acc)} / ${pct(after.asr)}` : '(no repair)'} | ${clp.length} ch: ${pct(clpMetrics.acc)} / ${pct(clpMetrics.asr)} | ${randomCell} |`,
  );

  if (fx.attack) oracleRows.push(await oraclePruningRow(fx, loaded, data));
  seedRows.push(await seedsRow(fx, files, entry, data, { report, repaired }));

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

printTable(
  'Scan (seed 1, default budget 60 s)',
  [
    'fixture',
    'verdict',
    'flagged',
    'pruned',
    'wall s',
    'evaluations',
    'peak MiB (tensors / wasm heap)',
    'real accuracy before → after',
    'real-trigger ASR before → after',
  ],
  scanRows,
);
printTable(
  'Time / evaluations per stage',
  ['fixture', 'synthesis', 'trigger reverse', 'Shapley + pruning + recheck', 'verification'],
  stageRows,
);
printTable(
  'Baselines on real test data (accuracy / real-trigger ASR)',
  ['fixture', 'original', 'ShapPruning', 'CLP (u = 3)', 'random pruning, same count'],
  baselineRows,
);
printTable(SEEDS_TITLE, SEEDS_HEADER, seedRows);
printTable(ORACLE_TITLE, ORACLE_HEADER, oracleRows);
printTable('Forward pass, batch 64', ['fixture', 'wasm (SIMD)', 'cpu backend', 'speed-up'], speedRows);
if (only.length === 0 || only.includes('keras')) {
  printTable(
    'Keras files (seed 1, default budget 60 s; accuracy on the first 2000 real test images)',
    ['source', 'file', 'format', 'parameters', 'load', 'real accuracy', 'verdict', 'scan wall'],
    await benchKeras(),
  );
}
if (only.length === 0 || only.includes('onnx')) {
  printTable(
    'ONNX files exported by PyTorch (seed 1, default budget 60 s; data-free, then few-shot with 10 real images per class; accuracy and ASR by onnxruntime on the first 2000 real test images)',
    [
      'fixture',
      'arch',
      'opset',
      'parameters',
      'load',
      'real accuracy',
      'real ASR',
      'data-free',
      'few-shot (repaired file judged)',
      'scan wall',
    ],
    await benchOnnx(),
  );
}

if (only.length === 0 || only.includes('memory')) {
  // Each probe in its own process: the wasm heap only grows.
  const probe = (args: string[]) =>
    execFileSync(process.execPath, ['tools/run-ts.mjs', 'bench/memory.ts', ...args], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .at(-1)!;
  printTable(
    'Memory at the default budget (untrained CIFAR-style CNNs, 64-64-128-128 convolutions; 20 s scans)',
    [
      'model',
      'weights MiB',
      'activation budget MiB',
      'peak tensors MiB',
      'wasm heap MiB',
      'JS heap MiB',
      'isolate total MB (heaps + file bytes)',
      'verdict',
    ],
    [['320'], ['320', 'bn'], ['600']].map(probe),
  );
}

if (only.length === 0 || only.includes('shapley')) {
  printTable(SHAPLEY_SAVING_TITLE, SHAPLEY_SAVING_HEADER, await benchShapleySaving(manifest()));
}
