import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { version_wasm } from '@tensorflow/tfjs-backend-wasm';
import { BackdoorGame, TailEvaluator } from '../stages/shapley/backdoor-game.ts';
import { Budget, type Stage } from '../budget.ts';
import { comparableNorms, DETECT_DEFAULTS, detectTargets, median, type DetectConfig } from '../stages/detection/detect.ts';
import { digestFiles, type ModelDigest } from '../util/digest.ts';
import { ShapguardError } from '../errors.ts';
import { describeModel, playerLayers, type ModelInfo } from '../model/model-info.ts';
import { inferInputRange } from '../model/input-range.ts';
import { loadModel, modelFormat } from '../model/load.ts';
import type { LoadedModel } from '../model/loaded-model.ts';
import { disposeMasks, playerLayerName, PlayerSet } from '../stages/players.ts';
import type { ProgressFn, StageName } from '../progress.ts';
import { choosePrune, PRUNE_DEFAULTS, type PruneConfig, type PruneResult, type TargetProbe } from '../stages/repair/prune.ts';
import { prunedWeights } from '../model/prune-weights.ts';
import { SCHEMA_VERSION, type ClassReport, type RoundReport, type ScanReport } from '../output/report.ts';
import { Rng } from '../util/rng.ts';
import { estimateShapley, SHAPLEY_DEFAULTS, type ShapleyConfig } from '../stages/shapley/shapley.ts';
import { stampReversed } from '../stages/trigger/stamp.ts';
import { synthesize, SYNTH_DEFAULTS, type SynthConfig, type SynthResult } from '../stages/synthesis/synth.ts';
import { reverseTriggers, TRIGGER_DEFAULTS, type ReversedTrigger, type TriggerConfig } from '../stages/trigger/reverse.ts';
import { measure } from '../stages/verification/verify.ts';

export interface ScanOptions {
  /** Path of model.json among the files. */
  entry?: string;
  seed?: number;
  /** Wall-clock bound of the whole scan, seconds (load and save excluded). */
  budgetSeconds?: number;
  /** Evaluation bound (full-forward row equivalents); deterministic, unlike the clock. */
  maxEvals?: number;
  inputRange?: [number, number];
  /** Player layers (`name`, or `name:positions`); default the last Conv2D and a Flatten-fed Dense's positions. */
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

/** A flagged target's reverse-engineered trigger, for people to look at (report.html). */
export interface TriggerEvidence {
  target: number;
  /** [height, width, channels] of the model's input. */
  shape: [number, number, number];
  /** height × width, in [0, 1]. */
  mask: Float32Array;
  /** height × width × channels, in [0, 1] (the engine's unit range). */
  pattern: Float32Array;
  /** A synthesized input of another class, and the same with the trigger stamped on it. */
  input: Float32Array;
  stamped: Float32Array;
}

export interface ScanResult {
  report: ScanReport;
  /** The repaired model's files (same names as the input), only when a repair was made. */
  repaired: Map<string, Uint8Array> | null;
  /** The flagged targets' triggers as found before any pruning (empty when nothing was flagged). */
  evidence: TriggerEvidence[];
}

/**
 * Shares of what is left of the budget when each stage starts: synthesis 20% of the whole, trigger reverse
 * 50% (0.625 of the 80% left), then per prune round Shapley, pruning and the recheck split the rest
 * (the last round's Shapley may take 80% of what remains).
 */
const STAGE_SHARES = { synthesis: 0.2, triggerReverse: 0.625, shapleyRound: 0.6, shapleyLastRound: 0.8, pruning: 0.5, recheck: 0.5 };
/** A class counts as scanned once its trigger was optimised for this many steps. */
const MIN_STEPS_PER_CLASS = 10;
const MiB = 1024 * 1024;
const DEFAULT_MEMORY = 64 * MiB;
/** Trigger-reverse rows per step: as many as this many bytes of layer outputs (× 3) hold. */
const STEP_ROW_BYTES = 64 * MiB;
/**
 * A Worker isolate's 128 MB (122 MiB) holds, besides the activations: the wasm module and runtime (16-20
 * MiB of heap before any tensor), the JS heap (up to about 20 MiB), the weights twice (the model's file
 * bytes and its tensors), and the wasm heap's slack: it grows in 20% steps and never shrinks, about 1.33
 * MiB per MiB of activation budget. Measured on CNNs of 2.9M and 5.2M parameters (bench/memory.ts).
 */
const ISOLATE_BYTES = 128e6;
const RESERVED_BYTES = 37 * MiB;
const HEAP_SLACK = 1.33;
const MIN_MEMORY = 8 * MiB;
/**
 * What one row of a gradient pass really holds in the wasm heap, per byte of the layer outputs: measured
 * at 8-12× (pre-activations, activations, their gradients, the convolutions' working copies). Forward
 * passes hold about 4× but get the same rows: larger forward batches after the gradient stages made the
 * fragmented heap grow another step (93 -> 111 MiB on the 5.2M-parameter CNN).
 */
const GRADIENT_ROW_FACTOR = 12;

/** The default activation budget: what is left of a Worker isolate once the weights are in. */
function defaultMemory(parameters: number): number {
  const weights = 4 * parameters;
  const room = (ISOLATE_BYTES - RESERVED_BYTES - 2 * weights) / HEAP_SLACK;
  return Math.max(MIN_MEMORY, Math.min(DEFAULT_MEMORY, Math.floor(room)));
}

function bytesPerRow(info: ModelInfo, fromStep: number): number {
  let total = 0;
  for (const s of info.graph.steps.slice(fromStep)) {
    total += (s.layer.outputShape as (number | null)[]).slice(1).reduce<number>((a, b) => a * (b ?? 1), 1) * 4;
  }
  return total;
}

function stageConfigs(options: Omit<ScanOptions, 'toolVersion'>) {
  return {
    synthesis: { ...SYNTH_DEFAULTS, ...options.synthesis },
    triggerReverse: { ...TRIGGER_DEFAULTS, ...options.triggerReverse },
    detection: { ...DETECT_DEFAULTS, ...options.detection },
    shapley: { ...SHAPLEY_DEFAULTS, ...options.shapley },
    pruning: { ...PRUNE_DEFAULTS, ...options.pruning },
  };
}

/**
 * A report with verdict "error", no findings and the full configuration a scan with `options` would have
 * used: the start of every scan, and what a service writes when a job fails before any scan could run.
 */
export function emptyReport(options: ScanOptions, cfg = stageConfigs(options)): ScanReport {
  const seed = options.seed ?? 0;
  const budgetSeconds = options.budgetSeconds ?? 60;
  const range: [number, number] = options.inputRange ?? [0, 1];
  const memory = options.memoryBudgetBytes ?? DEFAULT_MEMORY;
  return {
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
      inputRangeSource: options.inputRange ? 'option' : 'default',
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
    timings: { totalSeconds: 0, stages: {} },
  };
}

/**
 * Scans a TensorFlow.js layers model for a backdoor and repairs it: the whole data-free ShapPruning
 * pipeline under one budget. Never throws for bad input: problems become a report with verdict
 * "error" or "unsupported" and a precise reason. The caller initialises the wasm backend first.
 */
export async function scanModel(files: ReadonlyMap<string, Uint8Array>, options: ScanOptions): Promise<ScanResult> {
  const now = options.now ?? (() => performance.now());
  const t0 = now();
  const progress = options.onProgress ?? (() => undefined);
  const entry = options.entry ?? 'model.json';
  const cfg = stageConfigs(options);
  const report = emptyReport(options, cfg);
  const timings = report.timings.stages;
  const seed = report.config.seed;
  const budgetSeconds = report.config.budgetSeconds;
  let range = report.config.inputRange;
  let memory = report.config.memoryBudgetBytes;
  let repaired: Map<string, Uint8Array> | null = null;
  const evidence: TriggerEvidence[] = [];
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
    report.input = { format: modelFormat(files, entry), entry, digest };
    loaded = await loadModel(files, entry);
    if (options.inputRange === undefined) {
      const inferred = inferInputRange(loaded.model);
      range = inferred.range;
      report.config.inputRange = range;
      report.config.inputRangeSource = inferred.source;
    }
    const info = describeModel(loaded.model);
    info.graph.inputRange = range;
    // Every stage works on [0, 1] images; the graph maps them into the model's own range.
    const unit: [number, number] = [0, 1];
    const layers = playerLayers(info, options.layers);
    const players = new PlayerSet(info, layers);
    const parameters = loaded.model.countParams();
    if (options.memoryBudgetBytes === undefined) {
      memory = defaultMemory(parameters);
      report.config.memoryBudgetBytes = memory;
    }
    report.model = {
      inputShape: info.shape,
      classes: info.classes,
      parameters,
      outputs: info.outputsProbabilities ? 'probabilities' : 'logits',
      batchNormLayers: info.bn.length,
      playerLayers: layers.map(playerLayerName),
      players: players.size,
    };
    lap('load');

    const budget = new Budget(budgetSeconds, options.maxEvals ?? Infinity, now);
    const rng = new Rng(seed);
    const stageReport = (name: string, stage: Stage, steps: number | null, stoppedBy: string | null) =>
      report.budget.stages.push({ name, evaluations: round6(stage.evaluations), steps, stoppedBy });

    // 1. Data reverse.
    progress('synthesis', 0);
    const synthStage = budget.stage(STAGE_SHARES.synthesis);
    const rowBytes = bytesPerRow(info, 0);
    const fullRow = rowBytes * 3;
    const passRows = Math.max(1, Math.floor(memory / (rowBytes * GRADIENT_ROW_FACTOR)));
    // Synthesis runs in memory-sized row groups; BatchNorm-statistics matching still sees the whole batch.
    const synth = synthesize(info, unit, cfg.synthesis, rng.fork(1), synthStage, passRows);
    stageReport('synthesis', synthStage, synth.steps, synth.stoppedBy);
    lap('synthesis');

    // 2. Trigger reverse, every class batched. Rows per step shrink as a row's cost grows, so that a step
    // takes about as long on a big model; the memory budget only sets how many go in one pass, so the
    // findings do not depend on it.
    progress('trigger-reverse', 0);
    const rowsFit = Math.max(info.classes * 2, Math.floor(STEP_ROW_BYTES / fullRow));
    const trigCfg = { ...cfg.triggerReverse, imagesPerTarget: Math.max(2, Math.min(cfg.triggerReverse.imagesPerTarget, Math.floor(rowsFit / info.classes))) };
    const trigStage = budget.stage(STAGE_SHARES.triggerReverse);
    // Rows that fit the memory budget in one gradient pass; more targets than that go in groups.
    const rowsPerPass = Math.max(trigCfg.imagesPerTarget, passRows);
    const rev = reverseTriggers(info, synth.rev, unit, trigCfg, rng.fork(2), trigStage, { rowsPerPass });
    stageReport('trigger-reverse', trigStage, rev.steps, rev.stoppedBy);
    lap('trigger-reverse');

    // 3. Detection.
    progress('detection', 0);
    const norms = comparableNorms(rev.triggers);
    const anomalies = detectTargets(norms, cfg.detection);
    const med = median(norms.filter(Number.isFinite));
    const classes: ClassReport[] = rev.triggers.map((t, i) => ({
      class: t.target,
      maskNorm: round6(t.norm),
      comparableNorm: round6(norms[i]!),
      anomalyIndex: round6(anomalies[i]!.anomalyIndex),
      normRatio: round6(anomalies[i]!.normRatio),
      reached: t.reached,
      success: round6(t.success),
      steps: t.steps,
      refined: t.refined,
      restartNorm: t.restartNorm !== null && Number.isFinite(t.restartNorm) ? round6(t.restartNorm) : null,
      flagged: anomalies[i]!.flagged,
    }));
    const flagged = anomalies.filter((a) => a.flagged).map((a) => a.target);
    report.detection = {
      median: round6(med),
      mad: round6(1.4826 * median(norms.filter(Number.isFinite).map((n) => Math.abs(n - med)))),
      classes,
      flagged,
    };
    const covered = (t: ReversedTrigger) => t.steps >= MIN_STEPS_PER_CLASS && (t.finished || (t.reached && t.steps >= cfg.triggerReverse.coveredSteps));
    const scanned = rev.triggers.filter(covered).length;
    const notes: string[] = [];
    const cut = rev.triggers.filter((t) => !t.finished && covered(t)).map((t) => t.target);
    if (cut.length > 0) notes.push(`the budget stopped the trigger reverse of class(es) ${cut.join(', ')} after at least ${cfg.triggerReverse.coveredSteps} steps with the success target reached; their mask norms are upper bounds`);
    if (synth.confident < 1) notes.push(`${((1 - synth.confident) * 100).toFixed(0)}% of synthetic images stayed below confidence ${cfg.synthesis.confidence}`);
    const unreached = rev.triggers.filter((t) => !t.reached).map((t) => t.target);
    if (unreached.length > 0) notes.push(`no reversed trigger reached ${cfg.triggerReverse.successTarget} success for class(es) ${unreached.join(', ')}; their last mask norm is used`);
    report.coverage = { classesScanned: scanned, classesTotal: info.classes, synthesisConfidence: round6(synth.confident), notes };
    lap('detection');

    const flaggedTriggers = rev.triggers.filter((t) => flagged.includes(t.target));
    for (const t of flaggedTriggers) {
      const px = info.shape[0] * info.shape[1] * info.shape[2];
      const i = Array.from(synth.ver.labels).findIndex((l) => l !== t.target);
      if (i < 0) continue;
      const one = { images: synth.ver.images.slice(i * px, (i + 1) * px), labels: Int32Array.of(synth.ver.labels[i]!), count: 1 };
      evidence.push({ target: t.target, shape: info.shape, mask: t.mask.slice(), pattern: t.pattern.slice(), input: one.images, stamped: stampReversed(one, info.shape, t.mask, t.pattern, t.target) });
    }
    const before = measure(info.graph, synth.ver, info.shape, flaggedTriggers, null, passRows);
    report.verification = { images: synth.ver.count, before: roundMetrics(before.metrics), after: null };

    if (scanned < info.classes && flagged.length === 0) {
      report.verdict = 'incomplete';
      report.reason = `the budget ran out before the trigger reverse finished: ${scanned} of ${info.classes} classes completed (stopped by ${rev.stoppedBy}); raise --budget or --max-evals`;
      report.repair = null;
    } else if (flagged.length === 0) {
      report.verdict = 'clean';
      report.repair = { status: 'not-needed', reason: null, pruned: [], curve: [], rounds: [], output: null };
    } else {
      report.verdict = 'backdoor';
      progress('shapley', 0);
      const outcome = shapPrune(info, players, synth, flaggedTriggers, report, cfg, budget, rng, memory, passRows, unit, med);
      lap('shapley');
      const { choice } = outcome;
      report.budget.shapleyStoppedBy = report.shapley.map((x) => x.stoppedBy).join(',');
      report.repair = {
        status: choice.status,
        reason: choice.reason,
        pruned: choice.pruned.map((k) => ({ ...players.players[k]!, value: outcome.valueOf(k) })),
        curve: choice.curve.map((x) => ({ pruned: x.pruned, agreement: round6(x.agreement), asr: Object.fromEntries(Object.entries(x.asr).map(([k, v]) => [k, round6(v)])) })),
        rounds: outcome.rounds,
        output: null,
      };

      // 6. Write the repaired model and verify it, reloaded from its own bytes, on D_ver.
      if (choice.status === 'repaired') {
        progress('verification', 0);
        const changed = prunedWeights(loaded, loaded.model, choice.pruned.map((k) => players.players[k]!), players.grids);
        try {
          repaired = await loaded.write(changed);
        } catch (err) {
          if (!(err instanceof ShapguardError) || err.kind !== 'unsupported') throw err;
          report.repair.status = 'not-repaired';
          report.repair.reason = `the repair could not be written back: ${err.message}`;
        }
      }
      if (repaired !== null) {
        const again = await loadModel(repaired, entry);
        const againGraph = describeModel(again.model).graph;
        againGraph.inputRange = range;
        const after = measure(againGraph, synth.ver, info.shape, flaggedTriggers, before.predictions, passRows);
        again.model.dispose();
        report.verification.after = roundMetrics(after.metrics);
        report.repair.output = { digest: await digestFiles(repaired) };
        lap('verification');
      }
    }
    report.budget.evaluationsUsed = round6(budget.evaluations);
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
  return { report, repaired, evidence };
}

interface PruneOutcome {
  choice: PruneResult;
  rounds: RoundReport[];
  valueOf: (k: number) => number;
}

/**
 * Shapley estimation and pruning, in rounds: after each prune the flagged targets' triggers are reversed
 * again on the pruned model, and a trigger that is still abnormally small starts another round from what
 * is pruned so far. One reversed trigger is only one way into the backdoor; a backdoor that survives its
 * removal (e.g. a blended, image-wide one) shows itself to the next reverse.
 */
function shapPrune(
  info: ModelInfo,
  players: PlayerSet,
  synth: SynthResult,
  flagged: ReversedTrigger[],
  report: ScanReport,
  cfg: { triggerReverse: TriggerConfig; detection: DetectConfig; shapley: ShapleyConfig; pruning: PruneConfig },
  budget: Budget,
  rng: Rng,
  memory: number,
  /** Rows per gradient pass within the memory budget. */
  passRows: number,
  range: [number, number],
  medianNorm: number,
): PruneOutcome {
  const tailRow = bytesPerRow(info, players.firstStep) * 2;
  // The recheck's gradient passes fit the memory budget like the first trigger reverse's.
  const checkCfg = { ...cfg.triggerReverse, imagesPerTarget: Math.min(cfg.triggerReverse.imagesPerTarget, Math.max(2, passRows)) };
  const clean = new TailEvaluator(info, players, synth.rev.images);
  const best = new Map<number, number>();
  const rounds: RoundReport[] = [];
  let pruned: number[] = [];
  let curve: PruneResult['curve'] = [];
  let triggers = flagged;
  let result: PruneResult = { status: 'not-repaired', reason: 'no round ran', pruned: [], curve: [] };
  for (let round = 0; round < cfg.pruning.maxRounds && triggers.length > 0; round++) {
    const roundStage = budget.stage(round === cfg.pruning.maxRounds - 1 ? STAGE_SHARES.shapleyLastRound : STAGE_SHARES.shapleyRound);
    const probes: TargetProbe[] = [];
    for (const [i, trig] of triggers.entries()) {
      const stamped = new TailEvaluator(info, players, stampReversed(synth.rev, info.shape, trig.mask, trig.pattern, trig.target));
      const batch = Math.max(4, Math.min(cfg.shapley.batch, Math.floor(memory / (tailRow * stamped.rows))));
      const sub = cappedStage(budget.stage(1 / (triggers.length - i)), roundStage);
      const est = estimateShapley(new BackdoorGame(stamped, trig.target, pruned), { ...cfg.shapley, batch }, rng.fork(100 * round + trig.target), sub);
      const order = est.values.map((_, k) => k).sort((a, b) => est.values[b]! - est.values[a]! || a - b);
      for (const [k, v] of est.values.entries()) best.set(k, Math.max(best.get(k) ?? -Infinity, v));
      report.shapley.push({
        target: trig.target,
        round,
        permutations: est.permutations,
        coalitions: est.coalitions,
        evaluations: round6(est.evaluations),
        converged: est.converged,
        stoppedBy: est.stoppedBy ?? 'none',
        fullValue: round6(est.fullValue),
        players: order.map((k) => ({ ...players.players[k]!, value: round6(est.values[k]!) })),
      });
      report.budget.stages.push({ name: `shapley-round-${round}-target-${trig.target}`, evaluations: round6(sub.evaluations), steps: est.permutations, stoppedBy: est.stoppedBy });
      probes.push({ target: trig.target, order, values: est.values, fullValue: est.fullValue, stamped });
    }
    const pruneStage = budget.stage(STAGE_SHARES.pruning);
    result = choosePrune(players, probes, clean, cfg.pruning, pruneStage, pruned);
    for (const p of probes) p.stamped.dispose();
    curve = [...curve, ...result.curve.map((c) => ({ ...c, pruned: c.pruned + pruned.length }))];
    report.budget.stages.push({ name: `pruning-round-${round}`, evaluations: round6(pruneStage.evaluations), steps: result.curve.length, stoppedBy: null });
    if (result.status !== 'repaired') {
      rounds.push({ round, targets: triggers.map((t) => t.target), pruned: [], residual: [] });
      break;
    }
    pruned = [...pruned, ...result.pruned];
    // Reverse the flagged targets again on the pruned model: is a small trigger still there?
    const masks = players.masks([Uint8Array.from({ length: players.size }, (_, k) => (pruned.includes(k) ? 0 : 1))], 1);
    const checkStage = budget.stage(STAGE_SHARES.recheck);
    const again = reverseTriggers(info, synth.rev, range, checkCfg, rng.fork(1000 + round), checkStage, { targets: flagged.map((t) => t.target), masks, rowsPerPass: passRows });
    disposeMasks(masks);
    report.budget.stages.push({ name: `recheck-round-${round}`, evaluations: round6(checkStage.evaluations), steps: again.steps, stoppedBy: again.stoppedBy });
    const residual = again.triggers.filter((t) => t.reached && t.norm < cfg.detection.residualRatio * medianNorm);
    rounds.push({ round, targets: triggers.map((t) => t.target), pruned: result.pruned.map((k) => players.players[k]!), residual: again.triggers.map((t) => ({ target: t.target, maskNorm: round6(t.norm), reached: t.reached })) });
    triggers = residual;
  }
  clean.dispose();
  const valueOf = (k: number) => round6(best.get(k) ?? 0);
  if (result.status === 'repaired' && triggers.length > 0) {
    result = {
      status: 'not-repaired',
      reason: `a reversed trigger for class(es) ${triggers.map((t) => t.target).join(', ')} is still abnormally small after ${cfg.pruning.maxRounds} pruning rounds (${pruned.length} players)`,
      pruned: [],
      curve,
    };
  } else if (result.status === 'repaired') {
    result = { ...result, pruned, curve };
  } else {
    result = { ...result, curve };
  }
  return { choice: result, rounds, valueOf };
}

/** A stage bounded by both its own share and an enclosing stage's limits. */
function cappedStage(inner: Stage, outer: Stage): Stage {
  return inner.deadline <= outer.deadline && inner.evalLimit <= outer.evalLimit ? inner : outer;
}

function round6(x: number): number {
  return Number.isFinite(x) ? Math.round(x * 1e6) / 1e6 : x;
}

function roundMetrics(m: { reversedAsr: Record<string, number>; agreement: number; syntheticAccuracy: number }) {
  return {
    reversedAsr: Object.fromEntries(Object.entries(m.reversedAsr).map(([k, v]) => [k, round6(v)])),
    agreement: round6(m.agreement),
    syntheticAccuracy: round6(m.syntheticAccuracy),
  };
}

