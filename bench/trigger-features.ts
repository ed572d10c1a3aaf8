// `npm run bench:features -- [--seeds 1,2] [--half tuning|held-out] [--only name,...] [--genuine] [--json out.json]`:
// what a class's reversed trigger looks like beyond its size, for every class whose trigger is at most 0.55
// of the median (the band where the mask-size rule has to decide), read on the scan's own synthetic images
// and triggers (same stream and settings as a default scan): its concentration, how far it carries to the
// other classes' synthetic images it was not optimised on, how much of that survives a 2-pixel shift, and
// how many featureless (uniform) images the model already calls that class. Asks whether anything but the
// size tells a planted target from a clean class that is naturally easy to reach (docs/benchmarks.md,
// "Why detection misses").
import { writeFileSync } from 'node:fs';
import { prepare } from '../src/core/scan/context.ts';
import { stageConfigs } from '../src/core/scan/options.ts';
import { ReportBuilder } from '../src/core/scan/report-builder.ts';
import { startRuns } from '../src/core/scan/steps.ts';
import type { LoadedModel } from '../src/core/model/loaded-model.ts';
import { comparableNorms, median } from '../src/core/stages/detection/detect.ts';
import { concentration } from '../src/core/stages/detection/concentration.ts';
import type { ImageBatch } from '../src/core/stages/synthesis/synth.ts';
import { stampReversed } from '../src/core/stages/trigger/stamp.ts';
import { predict } from '../src/core/stages/verification/verify.ts';
import { initWasmBackend } from '../src/core/tfjs/backend.ts';
import { readModelFiles } from '../src/node/read-model.ts';
import { nodeWasmPath } from '../src/node/wasm-path.ts';
import { genuineModels } from './keras.ts';
import { benchModels, benchScanOptions, cliArg, effective, type BenchModel } from './zoo.ts';

/** The band's upper end: classes above it are never close to being flagged. */
const BAND = 0.55;
const SHIFTS: [number, number][] = [
  [2, 0],
  [-2, 0],
  [0, 2],
  [0, -2],
];
const BLANK_LEVELS = [0, 0.25, 0.5, 0.75, 1];

export interface FeatureRow {
  model: string;
  half: string;
  seed: number;
  class: number;
  planted: boolean;
  /** Its comparable norm as a share of the median (the mask-size rule's ratio). */
  ratio: number;
  concentration: number;
  /** Success on every synthetic image of the other classes (D_rev), most of which its reverse never saw. */
  carries: number;
  /** The same with mask and pattern moved 2 pixels (mean of four directions), as a share of `carries`. */
  shifted: number;
  /** Share of uniform images (grey levels 0 to 1) the model calls this class with no trigger at all. */
  ownsBlank: number;
}

/** Moves an H×W×C array by (dy, dx), filling with zeros. */
function shift(a: Float32Array, h: number, w: number, c: number, dy: number, dx: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const sy = y - dy;
      const sx = x - dx;
      if (sy < 0 || sy >= h || sx < 0 || sx >= w) continue;
      for (let k = 0; k < c; k++) out[(y * w + x) * c + k] = a[(sy * w + sx) * c + k]!;
    }
  return out;
}

export async function triggerFeatures(m: BenchModel, seed: number, half: string): Promise<FeatureRow[]> {
  const { files, entry } = await readModelFiles(m.path);
  const options = benchScanOptions(entry, seed, 400_000, m.inputRange);
  const now = () => performance.now();
  const out = new ReportBuilder(options, stageConfigs(options), now);
  let loaded: LoadedModel | undefined;
  try {
    const ctx = await prepare(files, options, out, now, (x) => (loaded = x));
    const run = startRuns(ctx)[0]!;
    const { info } = ctx;
    const [h, w, c] = info.shape;
    const norms = comparableNorms(run.rev.triggers);
    const mid = median(norms);
    const success = (batch: ImageBatch, mask: Float32Array, pattern: Float32Array, k: number) => {
      const predicted = predict(info.graph, stampReversed(batch, info.shape, mask, pattern, k), info.shape);
      return predicted.length === 0 ? 0 : predicted.filter((p) => p === k).length / predicted.length;
    };
    const px = h * w * c;
    const blank = new Float32Array(BLANK_LEVELS.length * px);
    BLANK_LEVELS.forEach((v, i) => blank.fill(v, i * px, (i + 1) * px));
    const blankClasses = predict(info.graph, blank, info.shape);
    return run.rev.triggers.flatMap((t, i) => {
      const ratio = norms[i]! / mid;
      if (!(ratio <= BAND)) return [];
      const k = t.target;
      const carries = success(run.synth.rev, t.mask, t.pattern, k);
      const moved = SHIFTS.map(([dy, dx]) => success(run.synth.rev, shift(t.mask, h, w, 1, dy, dx), shift(t.pattern, h, w, c, dy, dx), k));
      return [
        {
          model: m.name,
          half,
          seed,
          class: k,
          planted: m.attack?.target === k,
          ratio,
          concentration: concentration(t.mask, h, w),
          carries,
          shifted: carries === 0 ? 0 : moved.reduce((a, b) => a + b, 0) / moved.length / carries,
          ownsBlank: blankClasses.filter((p) => p === k).length / BLANK_LEVELS.length,
        },
      ];
    });
  } finally {
    loaded?.model.dispose();
  }
}

const f2 = (x: number) => x.toFixed(2);

/** Every row, smallest ratio first; then, per feature, the planted targets' range against the clean classes' in the band above the size bound. */
export function featureTables(rows: FeatureRow[], bound: number): string {
  const out = [
    '| model | half | seed | class | ratio | concentration | carries | shifted 2 px | owns blank images |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of [...rows].sort((a, b) => a.ratio - b.ratio))
    out.push(
      `| ${r.model} | ${r.half} | ${r.seed} | ${r.planted ? `**${r.class} (planted)**` : r.class} | ${f2(r.ratio)} | ${f2(r.concentration)} | ${f2(r.carries)} | ${f2(r.shifted)} | ${f2(r.ownsBlank)} |`,
    );
  const band = rows.filter((r) => r.ratio > bound);
  const range = (xs: number[]) => (xs.length === 0 ? '–' : `${f2(Math.min(...xs))}–${f2(Math.max(...xs))}`);
  out.push('', `In the band ${bound} < ratio ≤ ${BAND} (where the size rule does not flag):`, '');
  out.push('| feature | planted targets | other classes |', '|---|---|---|');
  for (const key of ['concentration', 'carries', 'shifted', 'ownsBlank'] as const)
    out.push(
      `| ${key} | ${range(band.filter((r) => r.planted).map((r) => r[key]))} | ${range(band.filter((r) => !r.planted).map((r) => r[key]))} |`,
    );
  return out.join('\n');
}

if (process.argv[1]?.endsWith('trigger-features.ts') || process.argv[1]?.endsWith('trigger-features.mjs')) {
  const seeds = (cliArg('seeds') ?? '1,2').split(',').map(Number);
  const half = cliArg('half');
  const only = cliArg('only')?.split(',');
  const genuine = process.argv.includes('--genuine');
  await initWasmBackend({ wasmPath: nodeWasmPath() });
  const models = (genuine ? genuineModels() : benchModels()).filter(
    (m) =>
      (half === undefined || m.half === half) &&
      (only === undefined || only.includes(m.name)) &&
      (m.attack === null || (effective(m) && m.attack.trigger.kind !== 'blended')),
  );
  const rows: FeatureRow[] = [];
  for (const m of models)
    for (const seed of seeds) {
      const found = await triggerFeatures(m, seed, genuine ? 'genuine' : m.half);
      rows.push(...found);
      console.error(`${m.name} seed ${seed}: ${found.length} classes in the band`);
      if (cliArg('json')) writeFileSync(cliArg('json')!, JSON.stringify(rows, null, 1));
    }
  console.log(featureTables(rows, stageConfigs({}).detection.maxNormRatio));
}
