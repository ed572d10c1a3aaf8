// `npm run bench:tendency -- [--seeds 1,2] [--half tuning|held-out] [--only name,...] [--genuine]
// [--detections a.json,b.json] [--json out.json]`: the classifier head's tendency (stages/detection/tendency.ts)
// on every zoo model, flagged or not, read as the scan reads it (same random stream and settings), beside
// the mask-size detection of the same run: from --detections (saved `bench:zoo --detect-only --json` runs,
// default settings) or, without it, by running that detection here. Then the joint rule swept over its two
// bounds per half: the planted targets it adds, the clean models and wrong classes it flags
// (docs/benchmarks.md, "The classifier head's tendency"). --genuine: the six genuine Keras files in
// ../shared/fixtures/keras instead of the zoo.
import { readFileSync, writeFileSync } from 'node:fs';
import { loadModel } from '../src/core/model/load.ts';
import { describeModel } from '../src/core/model/model-info.ts';
import { Budget } from '../src/core/budget.ts';
import { DETECT_DEFAULTS } from '../src/core/stages/detection/detect.ts';
import { measureTendency, TENDENCY_STEPS } from '../src/core/stages/detection/tendency.ts';
import { initWasmBackend } from '../src/core/tfjs/backend.ts';
import { Rng } from '../src/core/util/rng.ts';
import { readModelFiles } from '../src/node/read-model.ts';
import { nodeWasmPath } from '../src/node/wasm-path.ts';
import { genuineModels } from './keras.ts';
import { benchModels, cliArg, detectZoo, effective, type BenchModel, type ZooRun } from './zoo.ts';

interface TendencyRow {
  model: string;
  half: string;
  seed: number;
  planted: number | null;
  effective: boolean;
  blend: boolean;
  /** What the mask-size rule flagged, and every class's norm as a share of the median. */
  flagged: number[];
  ratios: number[];
  target: number;
  anomaly: number;
}

/** The scan's reading (steps.ts, tendencyStep): same stream and settings; images in [0, 1] only tell ReLU or not. */
async function tendencyOf(m: BenchModel, seed: number): Promise<{ target: number; anomaly: number }> {
  const { files, entry } = await readModelFiles(m.path);
  const loaded = await loadModel(files, entry);
  try {
    const info = describeModel(loaded.model);
    info.graph.inputRange = m.inputRange;
    const rng = new Rng(seed * 7919 + 13);
    const bases = Float32Array.from({ length: 16 * info.shape[0] * info.shape[1] * info.shape[2] }, () => rng.next());
    const cfg = { ...DETECT_DEFAULTS, tendencySteps: TENDENCY_STEPS };
    const t = measureTendency(info, bases, cfg, new Rng(seed).fork(80), new Budget(1e9, Infinity).stage(1));
    return t === null ? { target: -1, anomaly: 0 } : { target: t.target, anomaly: t.anomaly };
  } finally {
    loaded.model.dispose();
  }
}

/** Per half: what the joint rule at these bounds adds over the mask-size rule. */
function sweep(rows: TendencyRow[]): string {
  const out: string[] = [
    '| half | min outlier | max norm ratio | planted targets added | clean flagged | another class flagged |',
    '|---|---|---|---|---|---|',
  ];
  for (const half of [...new Set(rows.map((r) => r.half))]) {
    for (const minAnomaly of [0.5, 0.65, 0.8, 0.95, 1.1, 1.25]) {
      for (const maxRatio of [0.35, 0.4, 0.45, 0.5, 0.6]) {
        const added = rows.filter(
          (r) => r.half === half && r.flagged.length === 0 && r.anomaly >= minAnomaly && (r.ratios[r.target] ?? Infinity) <= maxRatio,
        );
        const names = (rs: TendencyRow[]) => rs.map((r) => `${r.model} s${r.seed}`).join(', ') || '–';
        const hits = added.filter((r) => r.effective && !r.blend && r.target === r.planted);
        const clean = added.filter((r) => r.planted === null);
        const wrong = added.filter((r) => r.planted !== null && r.target !== r.planted);
        out.push(
          `| ${half} | ${minAnomaly} | ${maxRatio} | ${hits.length} | ${clean.length}: ${names(clean)} | ${wrong.length}: ${names(wrong)} |`,
        );
      }
    }
  }
  return out.join('\n');
}

if (process.argv[1]?.endsWith('tendency.ts') || process.argv[1]?.endsWith('tendency.mjs')) {
  const seeds = (cliArg('seeds') ?? '1,2').split(',').map(Number);
  const half = cliArg('half');
  const only = cliArg('only')?.split(',');
  const saved = (cliArg('detections')?.split(',') ?? []).flatMap((f) => (JSON.parse(readFileSync(f, 'utf8')) as { runs: ZooRun[] }).runs);
  await initWasmBackend({ wasmPath: nodeWasmPath() });
  const models = (process.argv.includes('--genuine') ? genuineModels() : benchModels()).filter(
    (m) =>
      (half === undefined || m.half === half) &&
      (only === undefined || only.includes(m.name)) &&
      (m.attack === null || effective(m) || m.name.includes('blend')),
  );
  const rows: TendencyRow[] = [];
  for (const m of models) {
    for (const seed of seeds) {
      const det = saved.find((r) => r.model === m.name && r.seed === seed) ?? (await detectZoo(m, seed, 400_000));
      const t = await tendencyOf(m, seed);
      const row: TendencyRow = {
        model: m.name,
        half: process.argv.includes('--genuine') ? 'genuine' : m.half,
        seed,
        planted: m.attack?.target ?? null,
        effective: effective(m),
        blend: m.name.includes('blend'),
        flagged: det.flagged,
        ratios: det.ratios,
        ...t,
      };
      rows.push(row);
      console.error(
        `${m.name} seed ${seed}: mask size [${det.flagged}], head leans to ${t.target} (${t.anomaly.toFixed(2)}, its norm ${(det.ratios[t.target] ?? NaN).toFixed(2)} of the median), planted ${row.planted ?? '–'}`,
      );
      if (cliArg('json')) writeFileSync(cliArg('json')!, JSON.stringify(rows, null, 1));
    }
  }
  console.log(sweep(rows));
}
