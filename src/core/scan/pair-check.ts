import type { Stage } from '../budget.ts';
import { ShapguardError } from '../errors.ts';
import type { ModelInfo } from '../model/model-info.ts';
import { mixBases } from '../sample/sample.ts';
import {
  allToAllScore,
  cheapestMapping,
  mappingTransfer,
  universalTarget,
  universality,
  type PairTransfer,
} from '../stages/detection/pairs.ts';
import type { ImageBatch, SynthResult } from '../stages/synthesis/synth.ts';
import { reverseTriggers, type ReversedTrigger, type TriggerResult } from '../stages/trigger/reverse.ts';
import { Rng } from '../util/rng.ts';
import type { ScanContext } from './context.ts';
import { STAGE_SHARES } from './options.ts';
import { round6 } from './report-builder.ts';
import { samplePredicted } from './steps.ts';

/**
 * The pair check's bases (stages/detection/pairs.ts): per source class, the trusted sample's used images the
 * model calls that class, topped up from the synthetic ones. Few-shot only: on synthetic images an
 * all-to-all trigger barely works, since it is read together with the source class's real features.
 */
export function pairBases(ctx: ScanContext, synth: SynthResult): { bases: ImageBatch; realPerSource: number[] } {
  const few = ctx.fewShot;
  if (few === null) throw new ShapguardError('internal', 'the all-to-all check needs the trusted sample (few-shot mode)');
  const per = ctx.cfg.allToAll.imagesPerSource;
  const predicted = samplePredicted(ctx);
  const realPerSource = Array.from({ length: ctx.info.classes }, (_, k) =>
    Math.min(per, few.use.labels.filter((l, r) => l === k && predicted[r] === k).length),
  );
  return { bases: mixBases(few.use, predicted, synth.rev, per, ctx.info.classes), realPerSource };
}

/** The all-to-all check's place in a data-free report: not run, and why. */
export const DATA_FREE_NO_ALL_TO_ALL =
  'data-free scans do not check for all-to-all backdoors: on synthetic images the planted all-to-all trigger barely works, and backdoored and clean models measured alike there; give the scan a few trusted images per class (CLI --clean-samples, service CLEAN_SAMPLES) to check';

/** Where a pair check runs other than detection's: the pruned model, its own stream and stage. */
export interface PairCheckOn {
  info?: ModelInfo;
  rng?: Rng;
  stage?: Stage;
}

/** The pair check's measurements, before any rule: what the report records and the bench reads. */
export interface PairCheck {
  rev: TriggerResult;
  stage: Stage;
  pairs: number;
  /** norms[s][t]: the pair's mask norm (Infinity where it never reached success; NaN on the diagonal). */
  norms: number[][];
  mapping: number[];
  transfer: PairTransfer[];
}

/**
 * 3b. The pair check's search (stages/detection/pairs.ts): a trigger for every ordered source → target pair
 * on `bases` (the scan's: pairBases), the cheapest mapping over them, and how far each mapped pair's trigger
 * carries that mapping to the other classes.
 */
export function pairCheck(ctx: ScanContext, bases: ImageBatch, on: PairCheckOn = {}): PairCheck {
  const info = on.info ?? ctx.info;
  const K = info.classes;
  ctx.progress('all-to-all', 0);
  const pairs = Array.from({ length: K * K }, (_, i) => ({ source: Math.floor(i / K), target: i % K })).filter(
    (p) => p.source !== p.target,
  );
  const stage = on.stage ?? ctx.budget.stage(STAGE_SHARES.allToAll);
  // One start, no restarts: the mapping is read off all K(K−1) pairs together, not off one class's size.
  // A stream of its own (as the sample split's), so the check draws the same whatever ran before it.
  const rng = on.rng ?? new Rng(ctx.report.config.seed).fork(5);
  const rev = reverseTriggers(info, bases, ctx.unit, { ...ctx.cfg.triggerReverse, restarts: 0 }, rng, stage, {
    pairs,
    rowsPerPass: ctx.plan.triggerRowsPerPass,
  });
  const norms = Array.from({ length: K }, (_, s) => Array.from({ length: K }, (_, t) => (s === t ? NaN : Infinity)));
  for (const t of rev.triggers) norms[t.source!]![t.target] = t.reached ? t.norm : Infinity;
  const { mapping } = cheapestMapping(norms);
  const transfer = mappingTransfer(info.graph, info.shape, bases, rev.triggers, mapping, ctx.plan.passRows);
  return { rev, stage, pairs: pairs.length, norms, mapping, transfer };
}

/**
 * The fewest evaluations per pair and base image an all-to-all check took to converge over the zoo's few-shot
 * checks (77.7, the clean MNIST LeNet's 55,968 for 90 pairs of 8 images; others took up to 138): a search is
 * forecast to need at least this much, and not started where the budget cannot hold it.
 */
export const PAIR_EVALS_PER_IMAGE = 75;

/** The least a full all-to-all check costs, in evaluations, on a model of `classes` classes. */
export function allToAllForecast(classes: number, imagesPerSource: number): number {
  return classes * (classes - 1) * imagesPerSource * PAIR_EVALS_PER_IMAGE;
}

/** Records the pair check as not run, and why. */
export function allToAllNotRun(ctx: ScanContext, reason: string): null {
  ctx.report.allToAll = {
    checked: false,
    reason,
    realPerSource: [],
    norms: [],
    mapping: [],
    follows: [],
    score: 0,
    flagged: false,
    universal: [],
    universalTarget: null,
  };
  return null;
}

/** A flagged all-to-all backdoor: what its repair works on. */
export interface AllToAllFound {
  kind: 'all-to-all';
  /** The check's bases (per source class, trusted images first). */
  bases: ImageBatch;
  /**
   * The mapped pairs whose triggers carry the mapping to the other classes, each with its trigger: the
   * repair's game is played on them (a pair whose trigger moves only its own source is a natural
   * perturbation no pruning should chase).
   */
  carried: { source: number; target: number; trigger: ReversedTrigger }[];
}

/** A class every other class's pair trigger carries into: an all-to-one target the mask-size rule missed. */
export interface UniversalFound {
  kind: 'all-to-one';
  target: number;
  /** The pair trigger into it that carried furthest (the lowest source among equals): the report's evidence. */
  trigger: ReversedTrigger;
}

/** What the pair check found. */
export type PairFound = AllToAllFound | UniversalFound;

/**
 * 3b. The pair check (few-shot), judged and recorded in the report: an all-to-all mapping when the mapped
 * pairs' triggers carry it (ALL_TO_ALL_DEFAULTS.minScore), else an all-to-one target when one class's pair
 * triggers carry into it from everywhere (universalTarget); null when neither. A check the budget cannot
 * hold (forecast before it starts, or cut short) leaves the all-to-one verdict standing with a coverage note,
 * as a data-free scan's does: the check adds to the scan, and a many-class model's K(K−1) pairs would
 * otherwise turn every few-shot scan of it into "incomplete".
 */
export function pairCheckStep(ctx: ScanContext, synth: SynthResult): PairFound | null {
  const { classes } = ctx.info;
  const cfg = ctx.cfg.allToAll;
  const need = allToAllForecast(classes, cfg.imagesPerSource);
  const left = ctx.budget.left();
  const seconds = need * ctx.budget.secondsPerEvaluation();
  if (need > left.evaluations * STAGE_SHARES.allToAll || seconds > left.seconds * STAGE_SHARES.allToAll) {
    const reason = `its ${classes * (classes - 1)} source → target pairs need at least ${need} evaluations (about ${Math.ceil(seconds)} s at this scan's rate), more than the budget leaves; raise --budget or --max-evals to check`;
    ctx.report.coverage!.notes.push(`the all-to-all check did not run: ${reason}`);
    return allToAllNotRun(ctx, reason);
  }
  const { bases, realPerSource } = pairBases(ctx, synth);
  const check = pairCheck(ctx, bases);
  const { rev } = check;
  ctx.out.stage('all-to-all', check.stage, rev.steps, rev.stoppedBy);
  ctx.report.sample!.stages.push('all-to-all');
  const follows = check.transfer.map((x) => x.followsMedian);
  const score = allToAllScore(follows);
  const cut = rev.triggers.filter((t) => !t.finished).length;
  const flagged = score >= cfg.minScore;
  // Only detection reads how universally the pair triggers carry: the repair's checks search for a mapping.
  const carry = universality(ctx.info.graph, ctx.info.shape, bases, rev.triggers, classes, ctx.plan.passRows);
  // An all-to-all mapping is the stronger finding: its pairs include the ones a universal class would show.
  const universal = flagged ? null : universalTarget(carry.universal, cfg);
  // A finding made before the budget ran out stands; its absence, cut short, proves nothing, and says so.
  const reason =
    cut > 0
      ? `the budget ran out: ${cut} of ${check.pairs} pair triggers unfinished (stopped by ${rev.stoppedBy}); raise --budget or --max-evals to check`
      : null;
  if (reason !== null && !flagged && universal === null)
    ctx.report.coverage!.notes.push(`the all-to-all check found nothing, but ${reason}`);
  ctx.report.allToAll = {
    checked: true,
    reason,
    realPerSource,
    norms: check.norms.map((row) => row.map((v) => (Number.isFinite(v) ? round6(v) : null))),
    mapping: check.mapping,
    follows: follows.map(round6),
    score: round6(score),
    flagged,
    universal: carry.universal.map((u) => (Number.isNaN(u) ? null : round6(u))),
    universalTarget: universal,
    repairCheck: null,
  };
  ctx.out.lap('all-to-all');
  if (universal !== null) {
    const into = rev.triggers.filter((t) => t.target === universal);
    const share = (t: ReversedTrigger) => carry.into[t.source!]![universal]!;
    const trigger = into.reduce((best, t) => (share(t) > share(best) ? t : best));
    return { kind: 'all-to-one', target: universal, trigger };
  }
  if (!flagged) return null;
  const triggerOf = (source: number, target: number) => rev.triggers.find((t) => t.source === source && t.target === target)!;
  return {
    kind: 'all-to-all',
    bases,
    carried: check.mapping.flatMap((target, source) =>
      follows[source]! >= cfg.minScore ? [{ source, target, trigger: triggerOf(source, target) }] : [],
    ),
  };
}
