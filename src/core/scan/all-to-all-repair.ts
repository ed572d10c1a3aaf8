import type { ModelInfo } from '../model/model-info.ts';
import type { AllToAllRepairCheck } from '../output/report.ts';
import { rowsOf } from '../sample/sample.ts';
import { allToAllScore } from '../stages/detection/pairs.ts';
import { choosePrune } from '../stages/repair/prune.ts';
import { BackdoorGame, TailEvaluator, type StampedPart } from '../stages/shapley/backdoor-game.ts';
import { estimateShapley } from '../stages/shapley/shapley.ts';
import type { ImageBatch, SynthResult } from '../stages/synthesis/synth.ts';
import { stampReversed } from '../stages/trigger/stamp.ts';
import { measure, predict } from '../stages/verification/verify.ts';
import { digestFiles } from '../util/digest.ts';
import { Rng } from '../util/rng.ts';
import { wilson } from '../util/wilson.ts';
import type { ScanContext } from './context.ts';
import { STAGE_SHARES } from './options.ts';
import { allToAllForecast, pairCheck, type AllToAllFound } from './pair-check.ts';
import { recordShapley } from './shapley-step.ts';
import { round6, roundStep } from './report-builder.ts';
import { heldBackShort, repairImages, writeAndMeasure, type Findings } from './steps.ts';

/**
 * 4–6 for an all-to-all backdoor (few-shot only; the check that found it needs the sample): one Shapley
 * estimate over the mapped pairs whose triggers carry the mapping, all at once (v(S) = the mean probability
 * of each pair's target on its source's images stamped with its trigger), the prune under the same guard and
 * cap as an all-to-one repair, the pruned model written, and the whole pair check run again on it over the
 * held-back images. The planted trigger is one trigger that the model reads with each source's features, so
 * the neurons that carry it serve every pair: measured with the real trigger, one player removes it on three
 * of the four MNIST all-to-all fixtures (docs/benchmarks.md). Sets `report.repair`; returns the repaired
 * files, or null when nothing may be written.
 */
export async function repairAllToAll(
  ctx: ScanContext,
  synth: SynthResult,
  findings: Findings,
  found: AllToAllFound,
): Promise<Map<string, Uint8Array> | null> {
  const { info, players, cfg, budget, rng, out, report, plan } = ctx;
  const guard = repairImages(ctx, synth).guard;
  report.sample!.stages.push('shapley', 'pruning-guard');
  ctx.progress('shapley', 0, 'all-to-all');
  // Only the pairs whose triggers carry the mapping beyond their source (AllToAllFound.carried; measured: two
  // of ten mapped pairs that did not carry kept every prefix under the cap from removing all ten).
  const { carried } = found;
  const parts: StampedPart[] = carried.map(({ source, target, trigger: t }) => {
    const rows = rowsOf(found.bases, sourceRows(found.bases, source));
    return { target, tail: new TailEvaluator(info, players, stampReversed(rows, info.shape, t.mask, t.pattern, target)) };
  });
  const clean = new TailEvaluator(info, players, guard.images);
  const rows = parts.reduce((sum, p) => sum + p.tail.rows, 0);
  // The check after the prune is the costliest part: the Shapley and pruning stages leave room for it.
  const held = ctx.fewShot!.heldBack.count;
  // Twice: the check runs on the original model and on the pruned one (checkAllToAll).
  const reserve = 2 * allToAllForecast(info.classes, Math.ceil(held / info.classes));
  const shapleyStage = budget.stage(shareLeaving(ctx, reserve, STAGE_SHARES.shapleyLastRound));
  const est = estimateShapley(new BackdoorGame(parts), { ...cfg.shapley, batch: plan.shapleyBatch(rows) }, rng.fork(100), shapleyStage);
  const order = recordShapley(ctx, players, est, { target: null, pairs: carried.map(({ source, target }) => [source, target]), round: 0 });
  out.stage('shapley-all-to-all', shapleyStage, est.permutations, est.stoppedBy);
  out.lap('shapley');
  report.budget.shapleyStoppedBy = est.stoppedBy ?? 'none';
  ctx.progress('pruning', 0);
  const pruneStage = budget.stage(shareLeaving(ctx, reserve, STAGE_SHARES.pruning));
  // One probe per pair, all on the one estimate: a prefix counts only once every pair's trigger is removed.
  const probes = parts.map((p) => ({ target: p.target, order, values: est.values, fullValue: est.fullValue, stamped: p.tail }));
  const choice = choosePrune(players, probes, clean, cfg.pruning, pruneStage);
  for (const p of parts) p.tail.dispose();
  clean.dispose();
  out.stage('pruning-all-to-all', pruneStage, choice.curve.length, null);
  report.repair = {
    status: choice.status,
    reason: choice.reason,
    pruned: choice.pruned.map((k) => ({ ...players.players[k]!, value: round6(est.values[k]!) })),
    curve: choice.curve.map(roundStep),
    rounds: [{ round: 0, targets: carried.map((p) => p.target), pruned: choice.pruned.map((k) => players.players[k]!), residual: [] }],
    check: null,
    output: null,
  };
  if (choice.status !== 'repaired') return null;
  // No flagged all-to-one triggers to measure on D_ver: only the accuracy after.
  const pruned = await writeAndMeasure(
    ctx,
    synth,
    choice.pruned.map((k) => players.players[k]!),
    { flagged: [], before: findings.before },
  );
  if (pruned === null) return null;
  try {
    const check = checkAllToAll(ctx, pruned.model);
    report.allToAll!.repairCheck = check;
    if (!check.passed) {
      report.repair.status = 'not-repaired';
      report.repair.reason = `the pruned model failed the all-to-all check on held-back images: ${check.reason}`;
      return null;
    }
  } finally {
    pruned.dispose();
  }
  report.repair.output = { digest: await digestFiles(pruned.files) };
  out.lap('verification');
  return pruned.files;
}

/** `share` of what is left, or less, so that `reserve` evaluations (and their time at this scan's rate) stay over. */
function shareLeaving(ctx: ScanContext, reserve: number, share: number): number {
  const left = ctx.budget.left();
  const bySeconds = 1 - (reserve * ctx.budget.secondsPerEvaluation()) / Math.max(1e-9, left.seconds);
  return Math.max(0, Math.min(share, 1 - reserve / Math.max(1, left.evaluations), bySeconds));
}

function sourceRows(batch: ImageBatch, source: number): number[] {
  return Array.from(batch.labels.keys()).filter((r) => batch.labels[r] === source);
}

/**
 * The pair check that flagged the model, run again from fresh starts over the sample's held-back images the
 * original model calls their class: real images only, since on synthetic ones an all-to-all trigger barely
 * works and a check there would pass what it cannot see. Run first on the original model, with the same
 * images and stream: a check that finds no mapping there has no power to show one gone, so it counts only
 * when the original is flagged and the pruned model is not. The held-back part must be large enough for any
 * certificate (heldBackShort), every source must have had images, and both searches must have run to their end.
 */
function checkAllToAll(ctx: ScanContext, written: ModelInfo): AllToAllRepairCheck {
  const { info, cfg, plan } = ctx;
  const held = ctx.fewShot!.heldBack;
  const predicted = held.count > 0 ? predict(info.graph, held.images, info.shape, plan.passRows) : new Int32Array(0);
  const right = Array.from(held.labels.keys()).filter((r) => predicted[r] === held.labels[r]);
  const bases = rowsOf(held, right);
  const perSource = Array.from({ length: info.classes }, (_, k) => bases.labels.filter((l) => l === k).length);
  const acc = (graph: ModelInfo['graph']) =>
    held.count === 0 ? 0 : measure(graph, held, info.shape, [], null, plan.passRows).metrics.syntheticAccuracy;
  const accuracyAfter = acc(written.graph);
  const base = {
    images: bases.count,
    perSource,
    accuracyBefore: round6(acc(info.graph)),
    accuracyAfter: round6(accuracyAfter),
    intervalAfter: wilson(accuracyAfter, held.count).map(round6) as [number, number],
  };
  const missing = perSource.flatMap((n, k) => (n === 0 ? [k] : []));
  const refuse = (reason: string): AllToAllRepairCheck => ({
    ...base,
    mapping: [],
    follows: [],
    score: 0,
    original: null,
    passed: false,
    reason,
  });
  // The all-to-one repair's rule (with one held-back image per class its check certified a repair that kept
  // most of the planted trigger); here the check is not even run, its two pair searches being the costliest
  // part of the scan and unable to certify.
  const short = heldBackShort(ctx);
  if (short !== null) return refuse(short);
  if (missing.length > 0)
    return refuse(
      `the held-back sample has no image the model calls class ${missing.join(', ')}, so their pairs cannot be searched (the sample holds back a third of each class; a class needs at least 3 images)`,
    );
  const need = 2 * allToAllForecast(info.classes, Math.max(...perSource));
  const left = ctx.budget.left();
  if (need > left.evaluations || need * ctx.budget.secondsPerEvaluation() > left.seconds)
    return refuse(`the budget left cannot hold it (${need} evaluations at least); raise --budget or --max-evals`);
  ctx.report.sample!.stages.push('check');
  const bound = cfg.allToAll.minScore;
  const on = (model: ModelInfo, which: 'original' | 'repair') => {
    // The original's search may take half of what is left, the pruned model's all that then remains.
    const stage = ctx.budget.stage(which === 'original' ? 0.5 : 1, `all-to-all check of the ${which}`);
    const check = pairCheck(ctx, bases, { info: model, rng: new Rng(ctx.report.config.seed).fork(79), stage });
    ctx.out.stage(`all-to-all-check-${which}`, stage, check.rev.steps, check.rev.stoppedBy);
    const cut = check.rev.triggers.filter((t) => !t.finished).length;
    const follows = check.transfer.map((x) => x.followsMedian);
    return {
      score: allToAllScore(follows),
      mapping: check.mapping,
      follows: follows.map(round6),
      cut:
        cut === 0
          ? null
          : `the budget ran out on the ${which}: ${cut} of ${check.pairs} pair triggers unfinished (stopped by ${check.rev.stoppedBy}); raise --budget or --max-evals`,
    };
  };
  const before = on(info, 'original');
  const after = on(written, 'repair');
  const result = { ...base, mapping: after.mapping, follows: after.follows, score: round6(after.score), original: round6(before.score) };
  const cut = before.cut ?? after.cut;
  if (cut !== null) return { ...result, passed: false, reason: cut };
  if (before.score < bound)
    return {
      ...result,
      passed: false,
      reason: `on the held-back images the pair triggers carry no mapping on the original model either (score ${before.score.toFixed(2)}, the bound ${bound}), so they cannot show the backdoor gone`,
    };
  if (after.score >= bound)
    return {
      ...result,
      passed: false,
      reason: `fresh pair triggers still carry a mapping from class to class (score ${after.score.toFixed(2)}, the bound ${bound})`,
    };
  return { ...result, passed: true, reason: null };
}
