import type { Stage, StopReason } from '../../budget.ts';
import type { RunOptions } from '../../tfjs/graph.ts';
import type { ModelInfo } from '../../model/model-info.ts';
import type { Rng } from '../../util/rng.ts';
import type { ImageBatch } from '../synthesis/synth.ts';
import { TriggerSearch } from './search.ts';

export interface TriggerConfig {
  /** Rows per target: D_rev images of other classes the candidate trigger must flip. */
  imagesPerTarget: number;
  maxSteps: number;
  learningRate: number;
  initialCost: number;
  /** Attack success a reversed trigger must reach to count (Neural Cleanse: 0.99). */
  successTarget: number;
  /** Steps of success (or failure) before the cost is doubled (or halved). */
  patience: number;
  /** A target stops once its best mask has not shrunk by 1% for this many steps. */
  earlyStop: number;
  /** Above this many classes, screen all targets briefly, then refine the smallest masks. */
  screenAbove: number;
  screenShare: number;
  refineCount: number;
  /**
   * A target cut off by the budget still counts as covered once its trigger reached the success target
   * and was optimised for this many steps: its norm is then an upper bound that has stopped moving much.
   */
  coveredSteps: number;
  /**
   * The classes with the smallest masks are optimised again from a fresh start: mask optimisation is not
   * convex, and a planted trigger's mask can settle at two or three times its size (measured on 2 of 10
   * backdoored runs), which hides it among the clean classes.
   */
  restarts: number;
  /**
   * A restart replaces the first run only when its mask is at most this fraction of the first: smaller
   * differences are run-to-run noise, and keeping the minimum of two runs for a few classes only would make
   * those classes look smaller than the rest.
   */
  restartAccept: number;
}

export const TRIGGER_DEFAULTS: TriggerConfig = {
  imagesPerTarget: 8,
  maxSteps: 300,
  learningRate: 0.1,
  initialCost: 1e-3,
  successTarget: 0.99,
  patience: 5,
  earlyStop: 25,
  screenAbove: 16,
  screenShare: 1 / 3,
  refineCount: 6,
  coveredSteps: 100,
  restarts: 2,
  restartAccept: 0.75,
};

/** One candidate target's reversed trigger. */
export interface ReversedTrigger {
  target: number;
  /** The class its rows were drawn from in a pairwise reverse (`ReverseScope.pairs`); null: every other class. */
  source: number | null;
  /** L1 norm of the smallest mask that reached the success target (or of the last mask if none did). */
  norm: number;
  reached: boolean;
  /** Success of that mask on its rows. */
  success: number;
  steps: number;
  refined: boolean;
  /** Its optimisation ended on its own (early stop or its step count), not by the budget. */
  finished: boolean;
  /** Its norm at the end of the screening phase (two-phase runs above `screenAbove` classes), else null. */
  screenNorm: number | null;
  /** The best norm a restart from a fresh start reached (Infinity if it never reached), or null if none ran. */
  restartNorm: number | null;
  mask: Float32Array;
  pattern: Float32Array;
}

export interface TriggerResult {
  triggers: ReversedTrigger[];
  steps: number;
  stoppedBy: StopReason | 'converged' | 'steps';
}

/** Which targets to reverse, and on what model: the recheck after pruning masks the pruned players. */
export interface ReverseScope {
  /** Default: every class. */
  targets?: number[];
  /**
   * Source → target pairs instead of targets, each optimised on D_rev images of its source class only: an
   * all-to-all backdoor sends each class to its own target, so no one trigger flips every other class.
   */
  pairs?: readonly { source: number; target: number }[];
  masks?: Pick<RunOptions, 'masks' | 'inputMasks'>;
  /** Rows per gradient pass (memory); more targets than fit go in groups. */
  rowsPerPass?: number;
}

const budgetStopped = (r: TriggerResult['stoppedBy']) => r === 'time' || r === 'evaluations';

/**
 * Neural Cleanse for every candidate target at once: rows = targets × images, one mask and pattern per
 * target, each with its own cost λ on the mask's L1 norm, adjusted by Neural Cleanse's schedule. Above
 * `screenAbove` targets, all are screened briefly on a quarter of the rows and the smallest masks refined;
 * then the smallest masks are run again from a fresh start (see `restarts`).
 */
export function reverseTriggers(
  info: ModelInfo,
  rev: ImageBatch,
  range: [number, number],
  cfg: TriggerConfig,
  rng: Rng,
  stage: Stage,
  scope: ReverseScope = {},
): TriggerResult {
  const search = new TriggerSearch(info, rev, range, cfg, rng, scope);
  const all = search.tracks;
  // Shares of the progress count: the reruns are a few targets, the first pass all of them.
  const main = cfg.restarts > 0 ? 0.7 : 1;
  let stoppedBy: TriggerResult['stoppedBy'];
  if (all.length <= cfg.screenAbove) {
    stoppedBy = search.run(all, search.rowsPerTarget, cfg.maxSteps, stage, 'classes', [0, main]);
  } else {
    const screenSteps = Math.round(cfg.maxSteps * cfg.screenShare);
    const screened = main * 0.4;
    stoppedBy = search.run(all, Math.max(2, Math.floor(search.rowsPerTarget / 4)), screenSteps, stage, 'classes screened', [0, screened]);
    if (!budgetStopped(stoppedBy)) {
      for (const t of all) t.screenNorm = t.best;
      const order = [...all].sort((a, b) => a.best - b.best).slice(0, cfg.refineCount);
      for (const t of order) {
        t.done = false;
        t.refined = true;
        t.lastImprovement = t.steps;
      }
      stoppedBy = search.run(order, search.rowsPerTarget, cfg.maxSteps - screenSteps, stage, 'smallest refined', [screened, main]);
    }
  }
  if (cfg.restarts > 0 && !budgetStopped(stoppedBy)) search.restart(cfg.restarts, stage, [main, 1]);
  return search.result(stoppedBy);
}
