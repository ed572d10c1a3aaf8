import type { RoundReport } from '../output/report.ts';
import { disposeMasks, type PlayerSet } from '../stages/players.ts';
import { choosePrune, type PruneResult, type TargetProbe } from '../stages/repair/prune.ts';
import { BackdoorGame, TailEvaluator } from '../stages/shapley/backdoor-game.ts';
import { estimateShapley } from '../stages/shapley/shapley.ts';
import type { ImageBatch, SynthResult } from '../stages/synthesis/synth.ts';
import type { ReversedTrigger } from '../stages/trigger/reverse.ts';
import { stampReversed } from '../stages/trigger/stamp.ts';
import { residualSearch } from '../stages/verification/certify.ts';
import type { ScanContext } from './context.ts';
import { checkImages, type Findings } from './steps.ts';
import { STAGE_SHARES } from './options.ts';
import { round6 } from './report-builder.ts';
import { cappedStage, recordShapley } from './shapley-step.ts';
import { cellPrune } from './cells.ts';

export interface RepairOutcome {
  /** The players `choice.pruned` indexes: the scan's, with the cells of any split position after them. */
  players: PlayerSet;
  choice: PruneResult;
  rounds: RoundReport[];
  /** A player's best Shapley estimate over the rounds. */
  valueOf: (k: number) => number;
}

/**
 * 4–5. Shapley estimation and pruning, in rounds: after each prune the flagged targets' triggers are
 * reversed again on the pruned model, and a trigger that is still abnormally small starts another round
 * from what is pruned so far. One reversed trigger is only one way into the backdoor; a backdoor that
 * survives its removal (e.g. a blended, image-wide one) shows itself to the next reverse.
 */
export function repairRounds(ctx: ScanContext, synth: SynthResult, findings: Findings): RepairOutcome {
  const { info, cfg, budget, rng, out, plan } = ctx;
  let players = ctx.players;
  const checkCfg = { ...cfg.triggerReverse, imagesPerTarget: plan.recheckImagesPerTarget };
  // The rechecks between rounds look for a residual trigger on images of their own, from the start the
  // repair works on (made once, when the first recheck needs them); the final check uses fresh ones again.
  let recheckImages: ImageBatch | null = null;
  // repairImages put the sample's images among the stamped bases and made them the guard.
  ctx.report.sample?.stages.push('shapley', 'pruning-guard');
  // The guard's tail over the players in use, made again only when the cell stage split a position.
  let clean = new TailEvaluator(info, players, synth.guard.images);
  const best = new Map<number, number>();
  const rounds: RoundReport[] = [];
  let pruned: number[] = [];
  let curve: PruneResult['curve'] = [];
  let triggers: ReversedTrigger[] = findings.flagged;
  let result: PruneResult = { status: 'not-repaired', reason: 'no round ran', pruned: [], curve: [] };
  for (let round = 0; round < cfg.pruning.maxRounds && triggers.length > 0; round++) {
    ctx.progress('shapley', 0, round > 0 ? `round ${round + 1}` : undefined);
    const roundStage = budget.stage(round === cfg.pruning.maxRounds - 1 ? STAGE_SHARES.shapleyLastRound : STAGE_SHARES.shapleyRound);
    const probes: TargetProbe[] = [];
    const images: Float32Array[] = [];
    for (const [i, trig] of triggers.entries()) {
      images.push(stampReversed(synth.rev, info.shape, trig.mask, trig.pattern, trig.target));
      const stamped = new TailEvaluator(info, players, images[i]!);
      const sub = cappedStage(budget.stage(1 / (triggers.length - i), `target ${trig.target}`), roundStage);
      const est = estimateShapley(
        new BackdoorGame([{ tail: stamped, target: trig.target }], pruned),
        { ...cfg.shapley, batch: plan.shapleyBatch(stamped.rows) },
        rng.fork(100 * round + trig.target),
        sub,
      );
      const order = recordShapley(ctx, players, est, { target: trig.target, round });
      for (const [k, v] of est.values.entries()) best.set(k, Math.max(best.get(k) ?? -Infinity, v));
      out.stage(`shapley-round-${round}-target-${trig.target}`, sub, est.permutations, est.stoppedBy);
      probes.push({ target: trig.target, order, values: est.values, fullValue: est.fullValue, stamped });
    }
    // The prune, and the recheck of the pruned model after it, are the pruning stage.
    ctx.progress('pruning', 0);
    const pruneStage = budget.stage(STAGE_SHARES.pruning);
    const first = choosePrune(players, probes, clean, cfg.pruning, pruneStage, pruned);
    for (const p of probes) p.stamped.dispose();
    out.stage(`pruning-round-${round}`, pruneStage, first.curve.length, null);
    const split = cellPrune(ctx, { players, probes, images, guard: synth.guard.images, pruned, round }, first);
    for (const [k, v] of split.values) best.set(k, Math.max(best.get(k) ?? -Infinity, v));
    if (split.players !== players) {
      clean.dispose();
      clean = new TailEvaluator(info, split.players, synth.guard.images);
    }
    players = split.players;
    result = split.result;
    curve = [...curve, ...result.curve.map((c) => ({ ...c, pruned: c.pruned + pruned.length }))];
    if (result.status !== 'repaired') {
      rounds.push({ round, targets: triggers.map((t) => t.target), pruned: [], residual: [] });
      break;
    }
    pruned = [...pruned, ...result.pruned];
    // Is a small trigger into a flagged target still there on the pruned model, at partial success?
    const masks = players.masks([Uint8Array.from({ length: players.size }, (_, k) => (pruned.includes(k) ? 0 : 1))], 1);
    if (recheckImages === null) {
      const synthStage = budget.stage(STAGE_SHARES.synthesis, 'recheck images');
      const made = checkImages(ctx, findings, rng.fork(5), synthStage);
      out.stage('recheck-synthesis', synthStage, made.steps, made.stoppedBy);
      recheckImages = made.rev;
    }
    const checkStage = budget.stage(STAGE_SHARES.recheck, 'recheck of the pruned model');
    const again = residualSearch(
      info,
      recheckImages,
      findings.flagged.map((t) => t.target),
      findings.cleanOrder,
      checkCfg,
      cfg.detection,
      rng.fork(1000 + round),
      checkStage,
      { masks, rowsPerPass: plan.passRows },
    );
    disposeMasks(masks);
    out.stage(`recheck-round-${round}`, checkStage, again.steps, again.stoppedBy);
    const residual = again.triggers.filter((t) => again.findings.some((f) => f.target === t.target && !f.removed));
    rounds.push({
      round,
      targets: triggers.map((t) => t.target),
      pruned: result.pruned.map((k) => players.players[k]!),
      residual: again.findings.map((f) => ({ target: f.target, maskNorm: round6(f.norm), reached: Number.isFinite(f.norm) })),
    });
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
  return { players, choice: result, rounds, valueOf };
}
