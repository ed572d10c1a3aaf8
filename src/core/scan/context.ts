import * as tf from '@tensorflow/tfjs-core';
import { Budget } from '../budget.ts';
import { ShapguardError } from '../errors.ts';
import { modelFormat } from '../model/files.ts';
import { inferInputRange } from '../model/input-range.ts';
import { loadModel } from '../model/load.ts';
import type { LoadedModel } from '../model/loaded-model.ts';
import { describeModel, playerLayers, type ModelInfo } from '../model/model-info.ts';
import type { ScanReport } from '../output/report.ts';
import type { ProgressFn, StageName } from '../progress.ts';
import { playerLayerName, PlayerSet } from '../stages/players.ts';
import { digestFiles } from '../util/digest.ts';
import { Rng } from '../util/rng.ts';
import type { ScanOptions, StageConfigs } from './options.ts';
import { planScan, type ScanPlan } from './plan.ts';
import { readSample, splitSample, type CleanSample } from '../sample/sample.ts';
import type { ImageBatch } from '../stages/synthesis/synth.ts';
import type { ReportBuilder } from './report-builder.ts';

/** What every step of a scan works with, once the model is loaded: one object instead of a dozen parameters. */
export interface ScanContext {
  options: ScanOptions;
  cfg: StageConfigs;
  out: ReportBuilder;
  report: ScanReport;
  progress: ProgressFn;
  loaded: LoadedModel;
  info: ModelInfo;
  players: PlayerSet;
  plan: ScanPlan;
  budget: Budget;
  /** The scan's one random stream; each stage forks its own from it, in pipeline order. */
  rng: Rng;
  /** The range every stage works in: the graph maps [0, 1] images into the model's own input range. */
  unit: [number, number];
  /** Few-shot mode's trusted sample, split into what the repair uses and what only the final check sees; null when data-free. */
  fewShot: FewShot | null;
}

export interface FewShot {
  sample: CleanSample;
  use: ImageBatch;
  heldBack: ImageBatch;
  /** The original model's class for each used image, once asked for (samplePredicted in steps.ts). */
  predicted: Int32Array | null;
}

/**
 * Checks the runtime and options, loads and describes the model, picks the players and plans the memory:
 * everything before the first stage. `onLoaded` receives the model as soon as it exists, so the caller
 * can free it whatever fails afterwards.
 */
export async function prepare(
  files: ReadonlyMap<string, Uint8Array>,
  options: ScanOptions,
  out: ReportBuilder,
  now: () => number,
  onLoaded: (m: LoadedModel) => void,
): Promise<ScanContext> {
  const report = out.report;
  const watcher = options.onProgress ?? (() => undefined);
  // A stage's ticks (Stage.tick) belong to the stage the scan last announced.
  let current: StageName = 'load';
  const progress: ProgressFn = (stage, fraction, detail) => {
    current = stage;
    watcher(stage, fraction, detail);
  };
  const onTick = options.onProgress ? (fraction: number, detail: string) => watcher(current, fraction, detail) : null;
  const entry = options.entry ?? 'model.json';
  let range = report.config.inputRange;
  if (tf.getBackend() !== 'wasm') throw new ShapguardError('backend', 'the scan needs the tfjs wasm backend; call initWasmBackend() first');
  report.backend.simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
  if (!(range[0] < range[1]))
    throw new ShapguardError('input', `--input-range ${range[0]},${range[1]}: the low end must be below the high end`);
  const starts = out.cfg.synthesis.starts;
  if (starts.length === 0 || !starts.every(Number.isFinite))
    throw new ShapguardError('input', `synthesis.starts [${starts.join(', ')}]: give at least one finite background`);
  const resolution = out.cfg.synthesis.resolution;
  if (!(resolution > 0 && resolution <= 1))
    throw new ShapguardError('input', `synthesis.resolution ${resolution}: give a share of the input's size in (0, 1]`);
  progress('load', 0);
  report.input = { format: modelFormat(files, entry), entry, digest: await digestFiles(files) };
  const loaded = await loadModel(files, entry);
  onLoaded(loaded);
  if (options.inputRange === undefined) {
    const inferred = inferInputRange(loaded.model);
    range = inferred.range;
    report.config.inputRange = range;
    report.config.inputRangeSource = inferred.source;
  }
  const info = describeModel(loaded.model);
  info.graph.inputRange = range;
  const layers = playerLayers(info, options.layers);
  const players = new PlayerSet(info, layers);
  const parameters = loaded.model.countParams();
  const plan = planScan(
    {
      parameters,
      classes: info.classes,
      stepOutputs: info.graph.steps.map((s) =>
        (s.layer.outputShape as (number | null)[]).slice(1).reduce<number>((a, b) => a * (b ?? 1), 1),
      ),
      firstPlayerStep: players.firstStep,
    },
    options.memoryBudgetBytes,
    { triggerImagesPerTarget: out.cfg.triggerReverse.imagesPerTarget, shapleyBatch: out.cfg.shapley.batch },
  );
  report.config.memoryBudgetBytes = plan.memory;
  report.model = {
    inputShape: info.shape,
    classes: info.classes,
    parameters,
    outputs: info.outputsProbabilities ? 'probabilities' : 'logits',
    batchNormLayers: info.bn.length,
    playerLayers: layers.map(playerLayerName),
    players: players.size,
  };
  let fewShot: FewShot | null = null;
  if (options.cleanSample !== undefined) {
    const sample = await readSample(options.cleanSample, info.shape, info.classes);
    // A stream of its own, so the data-free stages draw exactly what they draw without a sample.
    fewShot = { sample, ...splitSample(sample.images, info.classes, new Rng(report.config.seed).fork(77)), predicted: null };
    report.sample = {
      images: sample.images.count,
      perClass: sample.perClass,
      bytes: sample.bytes,
      digest: sample.digest,
      resized: sample.resized,
      ignored: sample.ignored,
      used: fewShot.use.count,
      heldBack: fewShot.heldBack.count,
      predictedRight: 0,
      stages: [],
    };
  }
  out.lap('load');
  return {
    options,
    cfg: out.cfg,
    out,
    report,
    progress,
    loaded,
    info,
    players,
    plan,
    budget: new Budget(report.config.budgetSeconds, options.maxEvals ?? Infinity, now, onTick),
    rng: new Rng(report.config.seed),
    unit: [0, 1],
    fewShot,
  };
}
