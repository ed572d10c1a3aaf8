import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { version_wasm } from '@tensorflow/tfjs-backend-wasm';
import { BackdoorGame, TailEvaluator } from './backdoor-game.ts';
import { Budget, type Stage } from './budget.ts';
import { DETECT_DEFAULTS, detectTargets, median, type DetectConfig } from './detect.ts';
import { digestFiles, type ModelDigest } from './digest.ts';
import { ShapguardError } from './errors.ts';
import { describeModel, playerLayers, type ModelInfo } from './model-info.ts';
import { loadTfjsModel, writeTfjsModel, type LoadedModel } from './model-io.ts';
import { PlayerSet } from './players.ts';
import type { ProgressFn, StageName } from './progress.ts';
import { choosePrune, PRUNE_DEFAULTS, type PruneConfig, type TargetProbe } from './prune.ts';
import { prunedWeights } from './prune-weights.ts';
import { SCHEMA_VERSION, type ClassReport, type ScanReport, type ShapleyReport, type Verdict } from './report.ts';
import { Rng } from './rng.ts';
import { estimateShapley, SHAPLEY_DEFAULTS, type ShapleyConfig } from './shapley.ts';
import { stampReversed } from './stamp.ts';
import { synthesize, SYNTH_DEFAULTS, type SynthConfig } from './synth.ts';
import { reverseTriggers, TRIGGER_DEFAULTS, type TriggerConfig } from './trigger.ts';
import { measure } from './verify.ts';

export interface ScanOptions {
  /** Path of model.json among the files. */
  entry?: string;
  seed?: number;
  /** Wall-clock bound of the whole scan, seconds (load and save excluded). */
  budgetSeconds?: number;
  /** Evaluation bound (full-forward row equivalents); deterministic, unlike the clock. */
  maxEvals?: number;
  inputRange?: [number, number];
  /** Player layers; default the last Conv2D. */
  layers?: string[];
  /** Bytes the scan's activations may take; sizes batches. Default fits a 128 MB Worker isolate. */
  memoryBudgetBytes?: number;
  toolVersion: string;
  onProgress?: ProgressFn;
  /** Sees unexpected exceptions (the report keeps only their message), e.g. to log a stack. */
  onInternalError?: (err: unknown) => void;
  now?: () => number;
  synthesis?: Partial<SynthConfig>;
  triggerReverse?: Partial<TriggerConfig>;
  detection?: Partial<DetectConfig>;
  shapley?: Partial<ShapleyConfig>;
  pruning?: Partial<PruneConfig>;
}

export interface ScanResult {
  report: ScanReport;
  /** The repaired model's files (same names as the input), only when a repair was made. */
  repaired: Map<string, Uint8Array> | null;
}

/** Shares of what is left of the budget when each stage starts (the last stage takes the rest). */
const STAGE_SHARES = { synthesis: 0.2, triggerReverse: 0.625, shapley: 0.6, pruning: 1 };
/** A class counts as scanned once its trigger was optimised for this many steps. */
const MIN_STEPS_PER_CLASS = 10;
const DEFAULT_MEMORY = 64 * 1024 * 1024;

function bytesPerRow(info: ModelInfo, fromStep: number): number {
  let total = 0;
  for (const s of info.graph.steps.slice(fromStep)) {
    total += (s.layer.outputShape as (number | null)[]).slice(1).reduce<number>((a, b) => a * (b ?? 1), 1) * 4;
  }
  return total;
}

/**
 * Scans a TensorFlow.js layers model for a backdoor and repairs it: the whole data-free ShapPruning
 * pipeline under one budget. Never throws for bad input: problems become a report with verdict
 * "error" or "unsupported" and a precise reason. The caller initialises the wasm backend first.
 */
export async function scanModel(files: ReadonlyMap<string, Uint8Array>, options: ScanOptions): Promise<ScanResult> {
  const now = options.now ?? (() => performance.now());
  const t0 = now();
  const timings: Record<string, number> = {};
  const progress = options.onProgress ?? (() => undefined);
  const entry = options.entry ?? 'model.json';
  const cfg = {
    synthesis: { ...SYNTH_DEFAULTS, ...options.synthesis },
    triggerReverse: { ...TRIGGER_DEFAULTS, ...options.triggerReverse },
    detection: { ...DETECT_DEFAULTS, ...options.detection },
    shapley: { ...SHAPLEY_DEFAULTS, ...options.shapley },
    pruning: { ...PRUNE_DEFAULTS, ...options.pruning },
  };
  const seed = options.seed ?? 0;
  const budgetSeconds = options.budgetSeconds ?? 60;
  const range = options.inputRange ?? [0, 1];
  const memory = options.memoryBudgetBytes ?? DEFAULT_MEMORY;
  const report: ScanReport = {
    schemaVersion: SCHEMA_VERSION,
    verdict: 'error',
    reason: null,
    tool: { name: 'shapguard', version: options.toolVersion },
    libraries: { '@tensorflow/tfjs-core': tf.version_core, '@tensorflow/tfjs-layers': tfl.version_layers, '@tensorflow/tfjs-backend-wasm': version_wasm },
    backend: { name: tf.getBackend() ?? 'none', simd: false },
    input: null,
    model: null,
    config: {
      seed,
      budgetSeconds,
      maxEvals: options.maxEvals ?? null,
      inputRange: range,
      layers: options.layers ?? null,
      memoryBudgetBytes: memory,
      stageShares: STAGE_SHARES,
      synthesis: cfg.synthesis,
      triggerReverse: cfg.triggerReverse,
      detection: cfg.detection,
      shapley: cfg.shapley,
      pruning: cfg.pruning,
    },
    coverage: null,
    detection: null,
    shapley: [],
    repair: null,
    verification: null,
    budget: { evaluationsUsed: 0, shapleyStoppedBy: null, stages: [] },
    timings: { totalSeconds: 0, stages: timings },
  };
  let repaired: Map<string, Uint8Array> | null = null;
  let loaded: LoadedModel | undefined;
  let clock = now();
  const lap = (name: StageName) => {
    const t = now();
    timings[name] = (t - clock) / 1000;
    clock = t;
  };
  try {
    if (tf.getBackend() !== 'wasm') throw new ShapguardError('backend', 'the scan needs the tfjs wasm backend; call initWasmBackend() first');
    report.backend.simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
    if (!(range[0] < range[1])) throw new ShapguardError('input', `--input-range ${range[0]},${range[1]}: the low end must be below the high end`);
    progress('load', 0);
    const digest: ModelDigest = await digestFiles(files);
    report.input = { format: 'tfjs-layers', entry, digest };
    loaded = await loadTfjsModel(files, entry);
    const info = describeModel(loaded.model);
    const layers = playerLayers(info, options.layers);
    const players = new PlayerSet(info, layers);
    report.model = {
      inputShape: info.shape,
      classes: info.classes,
      parameters: loaded.model.countParams(),
      outputs: info.outputsProbabilities ? 'probabilities' : 'logits',
      batchNormLayers: info.bn.length,
      playerLayers: layers,
      players: players.size,
    };
    lap('load');

    const budget = new Budget(budgetSeconds, options.maxEvals ?? Infinity, now);
    const rng = new Rng(seed);
    const stageReport = (name: string, stage: Stage, steps: number | null, stoppedBy: string | null) =>
      report.budget.stages.push({ name, evaluations: round(stage.evaluations), steps, stoppedBy });

    // 1. Data reverse.
    progress('synthesis', 0);
    const synthStage = budget.stage(STAGE_SHARES.synthesis);
    const synth = synthesize(info, range, cfg.synthesis, rng.fork(1), synthStage);
    stageReport('synthesis', synthStage, synth.steps, synth.stoppedBy);
    lap('synthesis');

    // 2. Trigger reverse, every class batched. Rows per step are bounded by the memory budget.
    progress('trigger-reverse', 0);
    const fullRow = bytesPerRow(info, 0) * 3;
    const rowsFit = Math.max(info.classes * 2, Math.floor(memory / fullRow));
    const trigCfg = { ...cfg.triggerReverse, imagesPerTarget: Math.max(2, Math.min(cfg.triggerReverse.imagesPerTarget, Math.floor(rowsFit / info.classes))) };
    const trigStage = budget.stage(STAGE_SHARES.triggerReverse);
    const rev = reverseTriggers(info, synth.rev, range, trigCfg, rng.fork(2), trigStage);
    stageReport('trigger-reverse', trigStage, rev.steps, rev.stoppedBy);
    lap('trigger-reverse');

    // 3. Detection.
    progress('detection', 0);
    const norms = rev.triggers.map((t) => t.norm);
    const anomalies = detectTargets(norms, cfg.detection);
    const med = median(norms.filter(Number.isFinite));
    const classes: ClassReport[] = rev.triggers.map((t, i) => ({
      class: t.target,
      maskNorm: round(t.norm),
      anomalyIndex: round(anomalies[i]!.anomalyIndex),
      normRatio: round(anomalies[i]!.normRatio),
      reached: t.reached,
      success: round(t.success),
      steps: t.steps,
      refined: t.refined,
      flagged: anomalies[i]!.flagged,
    }));
    const flagged = anomalies.filter((a) => a.flagged).map((a) => a.target);
    report.detection = {
      median: round(med),
      mad: round(1.4826 * median(norms.filter(Number.isFinite).map((n) => Math.abs(n - med)))),
      classes,
      flagged,
    };
    const scanned = rev.triggers.filter((t) => t.steps >= MIN_STEPS_PER_CLASS).length;
    const notes: string[] = [];
    if (synth.confident < 1) notes.push(`${((1 - synth.confident) * 100).toFixed(0)}% of synthetic images stayed below confidence ${cfg.synthesis.confidence}`);
    const unreached = rev.triggers.filter((t) => !t.reached).map((t) => t.target);
    if (unreached.length > 0) notes.push(`no reversed trigger reached ${cfg.triggerReverse.successTarget} success for class(es) ${unreached.join(', ')}; their last mask norm is used`);
    report.coverage = { classesScanned: scanned, classesTotal: info.classes, synthesisConfidence: round(synth.confident), notes };
    lap('detection');

    const flaggedTriggers = rev.triggers.filter((t) => flagged.includes(t.target));
    const before = measure(info.graph, synth.ver, info.shape, flaggedTriggers, null);
    report.verification = { images: synth.ver.count, before: roundMetrics(before.metrics), after: null };

    if (scanned < info.classes && flagged.length === 0) {
      report.verdict = 'incomplete';
      report.reason = `the budget ran out after ${scanned} of ${info.classes} classes had their trigger reversed (stopped by ${rev.stoppedBy}); raise --budget or --max-evals`;
      report.repair = null;
    } else if (flagged.length === 0) {
      report.verdict = 'clean';
      report.repair = { status: 'not-needed', reason: null, pruned: [], curve: [], output: null };
    } else {
      report.verdict = 'backdoor';
      // 4. Shapley estimation per flagged target.
      progress('shapley', 0);
      const shapStage = budget.stage(STAGE_SHARES.shapley);
      const tailRow = bytesPerRow(info, players.firstStep) * 2;
      const probes: TargetProbe[] = [];
      const stoppedBy: string[] = [];
      for (const [i, trig] of flaggedTriggers.entries()) {
        const stamped = new TailEvaluator(info, players, stampReversed(synth.rev, info.shape, trig.mask, trig.pattern, trig.target));
        const batch = Math.max(4, Math.min(cfg.shapley.batch, Math.floor(memory / (tailRow * stamped.rows))));
        const sub = budget.stage(1 / (flaggedTriggers.length - i));
        const capped = cappedStage(sub, shapStage);
        const est = estimateShapley(new BackdoorGame(stamped, trig.target), { ...cfg.shapley, batch }, rng.fork(10 + trig.target), capped);
        stoppedBy.push(est.stoppedBy);
        const order = est.values.map((_, k) => k).sort((a, b) => est.values[b]! - est.values[a]! || a - b);
        const sr: ShapleyReport = {
          target: trig.target,
          permutations: est.permutations,
          coalitions: est.coalitions,
          evaluations: round(est.evaluations),
          converged: est.converged,
          stoppedBy: est.stoppedBy,
          fullValue: round(est.fullValue),
          players: order.map((k) => ({ ...players.players[k]!, value: round(est.values[k]!) })),
        };
        report.shapley.push(sr);
        probes.push({ target: trig.target, order, stamped });
      }
      report.budget.shapleyStoppedBy = stoppedBy.join(',');
      stageReport('shapley', shapStage, report.shapley.reduce((a, s) => a + s.permutations, 0), report.budget.shapleyStoppedBy);
      lap('shapley');

      // 5. Pruning under the agreement guard and the cap.
      progress('pruning', 0);
      const pruneStage = budget.stage(STAGE_SHARES.pruning);
      const clean = new TailEvaluator(info, players, synth.rev.images);
      const choice = choosePrune(players, probes, clean, cfg.pruning, pruneStage);
      stageReport('pruning', pruneStage, choice.curve.length, null);
      const valueOf = (k: number) => report.shapley.map((s) => s.players.find((p) => p.layer === players.players[k]!.layer && p.channel === players.players[k]!.channel)?.value ?? 0).reduce((a, b) => Math.max(a, b), -Infinity);
      report.repair = {
        status: choice.status,
        reason: choice.reason,
        pruned: choice.pruned.map((k) => ({ ...players.players[k]!, value: valueOf(k) })),
        curve: choice.curve.map((s) => ({ pruned: s.pruned, agreement: round(s.agreement), asr: Object.fromEntries(Object.entries(s.asr).map(([k, v]) => [k, round(v)])) })),
        output: null,
      };
      clean.dispose();
      for (const p of probes) p.stamped.dispose();
      lap('pruning');

      // 6. Write the repaired model and verify it, reloaded from its own bytes, on D_ver.
      if (choice.status === 'repaired') {
        progress('verification', 0);
        const changed = prunedWeights(loaded, loaded.model, choice.pruned.map((k) => players.players[k]!));
        repaired = writeTfjsModel(loaded, changed);
        const again = await loadTfjsModel(repaired, entry);
        const after = measure(describeModel(again.model).graph, synth.ver, info.shape, flaggedTriggers, before.predictions);
        again.model.dispose();
        report.verification.after = roundMetrics(after.metrics);
        report.repair.output = { digest: await digestFiles(repaired) };
        lap('verification');
      }
    }
    report.budget.evaluationsUsed = round(budget.evaluations);
  } catch (err) {
    repaired = null;
    report.repair = report.repair && { ...report.repair, output: null };
    if (err instanceof ShapguardError) {
      report.verdict = err.kind === 'unsupported' ? 'unsupported' : 'error';
      report.reason = err.message;
    } else {
      report.verdict = 'error';
      report.reason = `internal error: ${(err as Error).message}`;
      options.onInternalError?.(err);
    }
  } finally {
    loaded?.model.dispose();
  }
  report.timings.totalSeconds = (now() - t0) / 1000;
  return { report, repaired };
}

/** A stage bounded by both its own share and an enclosing stage's limits. */
function cappedStage(inner: Stage, outer: Stage): Stage {
  return inner.deadline <= outer.deadline && inner.evalLimit <= outer.evalLimit ? inner : outer;
}

function round(x: number): number {
  return Number.isFinite(x) ? Math.round(x * 1e6) / 1e6 : x;
}

function roundMetrics(m: { reversedAsr: Record<string, number>; agreement: number; syntheticAccuracy: number }) {
  return {
    reversedAsr: Object.fromEntries(Object.entries(m.reversedAsr).map(([k, v]) => [k, round(v)])),
    agreement: round(m.agreement),
    syntheticAccuracy: round(m.syntheticAccuracy),
  };
}

export type { Verdict };
