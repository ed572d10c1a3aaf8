import { playerKind, type PlayerSet } from '../stages/players.ts';
import { choosePrune, type PruneResult, type TargetProbe } from '../stages/repair/prune.ts';
import { BackdoorGame, SubGame, TailEvaluator } from '../stages/shapley/backdoor-game.ts';
import { estimateShapley } from '../stages/shapley/shapley.ts';
import type { ScanContext } from './context.ts';
import { cappedStage, recordShapley } from './shapley-step.ts';
import { STAGE_SHARES } from './options.ts';

/** A prune over a player set that may have split positions into cells; `players` is the set its indices mean. */
export interface CellChoice {
  players: PlayerSet;
  result: PruneResult;
  /** Each cell's best estimate over the targets (empty when nothing was split). */
  values: Map<number, number>;
}

/** What one round's Shapley estimate left for the cell stage: its probes, their stamped images, the guard's. */
export interface RoundProbes {
  players: PlayerSet;
  probes: TargetProbe[];
  /** Per probe, the stamped images its tail was built on. */
  images: Float32Array[];
  guard: Float32Array;
  pruned: readonly number[];
  round: number;
}

/**
 * 4b–5b. Cells: the position players carrying at least `minValueShare` of a target's backdoor among its
 * top `topK` are split into their channels, each target's game is estimated again over those cells alone
 * (every other player present), and the prune is chosen again with each split position's cells, in their
 * own order, standing where the position stood. The cell prune replaces the position prune when it
 * removes the reversed trigger at a guard reading no worse. Why: on Fashion-MNIST the top position also
 * carries much of what the model needs there (pruning it cost 1.1–1.4 points of real accuracy), while a
 * few of its channels carry the trigger. Opt-in (`PruneConfig.refineCells`): the post-repair check refused
 * most cell repairs, right ones included (docs/benchmarks.md, "Cells").
 */
export function cellPrune(ctx: ScanContext, round: RoundProbes, base: PruneResult): CellChoice {
  const { info, cfg, budget, rng, out, plan } = ctx;
  const { players, probes, pruned } = round;
  const values = new Map<number, number>();
  if (!cfg.pruning.refineCells) return { players, result: base, values };
  const heavy = new Set<number>();
  for (const p of probes)
    for (const k of p.order.slice(0, cfg.shapley.topK))
      if (playerKind(players.players[k]!) === 'position' && !pruned.includes(k) && p.values[k]! >= cfg.pruning.minValueShare * p.fullValue)
        heavy.add(k);
  if (heavy.size === 0) return { players, result: base, values };
  const split = players.withCells([...heavy]);
  const cellsBy = new Map([...heavy].map((k) => [k, split.cellsOf(k)]));
  const cells = [...cellsBy.values()].flat();
  const refines = [...heavy].map((k) => split.players[k]!);
  const stage = budget.stage(STAGE_SHARES.cells, 'cells');
  const cellProbes: TargetProbe[] = probes.map((p, i) => {
    const stamped = new TailEvaluator(info, split, round.images[i]!);
    const sub = new SubGame(new BackdoorGame([{ tail: stamped, target: p.target }], pruned), cells);
    const part = cappedStage(budget.stage(1 / (probes.length - i), `cells of target ${p.target}`), stage);
    const est = estimateShapley(
      sub,
      { ...cfg.shapley, batch: plan.shapleyBatch(stamped.rows) },
      rng.fork(300 + 100 * round.round + p.target),
      part,
    );
    const subOrder = recordShapley(ctx, split, est, { target: p.target, round: round.round, refines }, cells);
    out.stage(`cells-round-${round.round}-target-${p.target}`, part, est.permutations, est.stoppedBy);
    const all = [...p.values, ...new Array<number>(split.size - players.size).fill(0)];
    est.values.forEach((v, j) => {
      all[cells[j]!] = v;
      values.set(cells[j]!, Math.max(values.get(cells[j]!) ?? -Infinity, v));
    });
    // Each split position's cells, best first, where the position stood.
    const order = p.order.flatMap((k) => {
      const own = cellsBy.get(k);
      return own ? subOrder.filter((c) => own.includes(c)) : [k];
    });
    return { target: p.target, order, values: all, fullValue: p.fullValue, stamped };
  });
  const clean = new TailEvaluator(info, split, round.guard);
  const pruneStage = budget.stage(STAGE_SHARES.pruning, 'cells: pruning');
  const result = choosePrune(split, cellProbes, clean, cfg.pruning, pruneStage, pruned);
  out.stage(`cells-pruning-round-${round.round}`, pruneStage, result.curve.length, null);
  clean.dispose();
  for (const p of cellProbes) p.stamped.dispose();
  const better = result.status === 'repaired' && (base.status !== 'repaired' || dropAt(result) <= dropAt(base));
  return better ? { players: split, result, values } : { players, result: base, values: new Map() };
}

/** The guard's reading at the prefix a prune chose. */
function dropAt(r: PruneResult): number {
  return r.curve[r.pruned.length]?.probabilityDrop ?? Infinity;
}
