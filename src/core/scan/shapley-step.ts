import type { Stage } from '../budget.ts';
import type { ShapleyReport } from '../output/report.ts';
import type { PlayerSet } from '../stages/players.ts';
import type { ShapleyResult } from '../stages/shapley/shapley.ts';
import type { ScanContext } from './context.ts';
import { round6 } from './report-builder.ts';

/**
 * One Shapley estimate into the report (its players by decreasing value; ties by index) for the game
 * `about` names; returns that order, as indices into `players`, which the prune follows. `of` maps the
 * game's players to `players` where the game covers only some of them (a split position's cells).
 */
export function recordShapley(
  ctx: ScanContext,
  players: PlayerSet,
  est: ShapleyResult,
  about: Pick<ShapleyReport, 'target' | 'round' | 'pairs' | 'refines'>,
  of?: readonly number[],
): number[] {
  const order = est.values.map((_, k) => k).sort((a, b) => est.values[b]! - est.values[a]! || a - b);
  const index = (j: number) => (of ? of[j]! : j);
  ctx.report.shapley.push({
    ...about,
    permutations: est.permutations,
    coalitions: est.coalitions,
    evaluations: round6(est.evaluations),
    converged: est.converged,
    stoppedBy: est.stoppedBy ?? 'none',
    fullValue: round6(est.fullValue),
    players: order.map((j) => ({ ...players.players[index(j)]!, value: round6(est.values[j]!) })),
  });
  return order.map(index);
}

/** A stage bounded by both its own share and an enclosing stage's limits. */
export function cappedStage(inner: Stage, outer: Stage): Stage {
  return inner.deadline <= outer.deadline && inner.evalLimit <= outer.evalLimit ? inner : outer;
}
