import { ShapguardError } from '../errors.ts';
import { describeModel } from '../model/model-info.ts';
import { loadModel } from '../model/load.ts';
import { prunedWeights } from '../model/prune-weights.ts';
import type { ClassReport, Metrics, TriggerEvidence } from '../output/report.ts';
import { comparableNorms, detectTargets } from '../stages/detection/detect.ts';
import type { PruneResult } from '../stages/repair/prune.ts';
import { synthesize, type SynthResult } from '../stages/synthesis/synth.ts';
import { reverseTriggers, type ReversedTrigger, type TriggerResult } from '../stages/trigger/reverse.ts';
import { stampReversed } from '../stages/trigger/stamp.ts';
import { measure } from '../stages/verification/verify.ts';
import { digestFiles } from '../util/digest.ts';
import type { ScanContext } from './context.ts';
import { MIN_STEPS_PER_CLASS, STAGE_SHARES } from './options.ts';
import { round6, roundMetrics } from './report-builder.ts';

/** 1. Data reverse: synthetic images of every class, in memory-sized row groups. */
export function synthesizeStep(ctx: ScanContext): SynthResult {
  ctx.progress('synthesis', 0);
  const stage = ctx.budget.stage(STAGE_SHARES.synthesis);
  // BatchNorm-statistics matching still sees the whole batch.
  const synth = synthesize(ctx.info, ctx.unit, ctx.cfg.synthesis, ctx.rng.fork(1), stage, ctx.plan.passRows);
  ctx.out.stage('synthesis', stage, synth.steps, synth.stoppedBy);
  ctx.out.lap('synthesis');
  return synth;
}

/**
 * 2. Trigger reverse, every class batched. Rows per step shrink as a row's cost grows, so that a step takes
 * about as long on a big model; the memory budget only sets how many go in one pass.
 */
export function reverseStep(ctx: ScanContext, synth: SynthResult): TriggerResult {
  ctx.progress('trigger-reverse', 0);
  const cfg = { ...ctx.cfg.triggerReverse, imagesPerTarget: ctx.plan.triggerImagesPerTarget };
  const stage = ctx.budget.stage(STAGE_SHARES.triggerReverse);
  const rev = reverseTriggers(ctx.info, synth.rev, ctx.unit, cfg, ctx.rng.fork(2), stage, { rowsPerPass: ctx.plan.triggerRowsPerPass });
  ctx.out.stage('trigger-reverse', stage, rev.steps, rev.stoppedBy);
  ctx.out.lap('trigger-reverse');
  return rev;
}

/** What detection found. */
export interface Findings {
  flagged: ReversedTrigger[];
  /** The median of the classes' comparable mask norms (the yardstick of the recheck after pruning). */
  medianNorm: number;
  /** Classes whose trigger reverse ran far enough to count. */
  scanned: number;
  /** The flagged triggers as they were before any pruning, for report.html. */
  evidence: TriggerEvidence[];
  /** Predictions and metrics on D_ver before any repair. */
  before: { metrics: Metrics; predictions: Int32Array };
}

/** 3. Detection: the MAD outlier test on the masks, coverage, and the flagged triggers measured on D_ver. */
export function detectStep(ctx: ScanContext, synth: SynthResult, rev: TriggerResult): Findings {
  const { report, cfg, info } = ctx;
  ctx.progress('detection', 0);
  const norms = comparableNorms(rev.triggers);
  const detection = detectTargets(norms, cfg.detection);
  const classes: ClassReport[] = rev.triggers.map((t, i) => ({
    class: t.target,
    maskNorm: round6(t.norm),
    comparableNorm: round6(norms[i]!),
    anomalyIndex: round6(detection.classes[i]!.anomalyIndex),
    normRatio: round6(detection.classes[i]!.normRatio),
    reached: t.reached,
    success: round6(t.success),
    steps: t.steps,
    refined: t.refined,
    restartNorm: t.restartNorm !== null && Number.isFinite(t.restartNorm) ? round6(t.restartNorm) : null,
    flagged: detection.classes[i]!.flagged,
  }));
  const flaggedTargets = detection.classes.filter((a) => a.flagged).map((a) => a.target);
  report.detection = { median: round6(detection.median), mad: round6(detection.mad), classes, flagged: flaggedTargets };
  const covered = (t: ReversedTrigger) =>
    t.steps >= MIN_STEPS_PER_CLASS && (t.finished || (t.reached && t.steps >= cfg.triggerReverse.coveredSteps));
  const scanned = rev.triggers.filter(covered).length;
  const notes: string[] = [];
  const cut = rev.triggers.filter((t) => !t.finished && covered(t)).map((t) => t.target);
  if (cut.length > 0)
    notes.push(
      `the budget stopped the trigger reverse of class(es) ${cut.join(', ')} after at least ${cfg.triggerReverse.coveredSteps} steps with the success target reached; their mask norms are upper bounds`,
    );
  if (synth.confident < 1)
    notes.push(`${((1 - synth.confident) * 100).toFixed(0)}% of synthetic images stayed below confidence ${cfg.synthesis.confidence}`);
  const unreached = rev.triggers.filter((t) => !t.reached).map((t) => t.target);
  if (unreached.length > 0)
    notes.push(
      `no reversed trigger reached ${cfg.triggerReverse.successTarget} success for class(es) ${unreached.join(', ')}; their last mask norm is used`,
    );
  report.coverage = { classesScanned: scanned, classesTotal: info.classes, synthesisConfidence: round6(synth.confident), notes };
  ctx.out.lap('detection');

  const flagged = rev.triggers.filter((t) => flaggedTargets.includes(t.target));
  const before = measure(info.graph, synth.ver, info.shape, flagged, null, ctx.plan.passRows);
  report.verification = { images: synth.ver.count, before: roundMetrics(before.metrics), after: null };
  return { flagged, medianNorm: detection.median, scanned, evidence: evidenceOf(ctx, synth, flagged), before };
}

/** Each flagged trigger with a synthesized input of another class, before and after stamping. */
function evidenceOf(ctx: ScanContext, synth: SynthResult, flagged: ReversedTrigger[]): TriggerEvidence[] {
  const shape = ctx.info.shape;
  const px = shape[0] * shape[1] * shape[2];
  const evidence: TriggerEvidence[] = [];
  for (const t of flagged) {
    const i = Array.from(synth.ver.labels).findIndex((l) => l !== t.target);
    if (i < 0) continue;
    const one = { images: synth.ver.images.slice(i * px, (i + 1) * px), labels: Int32Array.of(synth.ver.labels[i]!), count: 1 };
    evidence.push({
      target: t.target,
      shape,
      mask: t.mask.slice(),
      pattern: t.pattern.slice(),
      input: one.images,
      stamped: stampReversed(one, shape, t.mask, t.pattern, t.target),
    });
  }
  return evidence;
}

/**
 * 6. The repaired model, written in its own format, reloaded from its own bytes and measured on D_ver;
 * null (and the repair marked not-repaired) when the format cannot hold the change.
 */
export async function writeRepaired(
  ctx: ScanContext,
  synth: SynthResult,
  findings: Findings,
  choice: PruneResult,
): Promise<Map<string, Uint8Array> | null> {
  const { report, loaded, players, info } = ctx;
  const repair = report.repair!;
  ctx.progress('verification', 0);
  const changed = prunedWeights(
    loaded,
    loaded.model,
    choice.pruned.map((k) => players.players[k]!),
    players.grids,
  );
  let repaired: Map<string, Uint8Array>;
  try {
    repaired = await loaded.write(changed);
  } catch (err) {
    if (!(err instanceof ShapguardError) || err.kind !== 'unsupported') throw err;
    repair.status = 'not-repaired';
    repair.reason = `the repair could not be written back: ${err.message}`;
    return null;
  }
  const again = await loadModel(repaired, loaded.entry);
  const graph = describeModel(again.model).graph;
  graph.inputRange = info.graph.inputRange;
  const after = measure(graph, synth.ver, info.shape, findings.flagged, findings.before.predictions, ctx.plan.passRows);
  again.model.dispose();
  report.verification!.after = roundMetrics(after.metrics);
  repair.output = { digest: await digestFiles(repaired) };
  ctx.out.lap('verification');
  return repaired;
}
