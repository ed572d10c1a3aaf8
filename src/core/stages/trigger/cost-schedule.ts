/**
 * Neural Cleanse's schedule for one candidate target, as plain logic: the cost λ on the mask's L1 norm is
 * doubled after `patience` steps in a row at the success target and halved after as many below it; the
 * smallest mask that reached the target is kept; the target stops once that mask has not shrunk by 1%
 * for `earlyStop` steps.
 */

export interface ScheduleConfig {
  /** Attack success a reversed trigger must reach to count (Neural Cleanse: 0.99). */
  successTarget: number;
  /** Steps of success (or failure) before the cost is doubled (or halved). */
  patience: number;
  /** A target stops once its best mask has not shrunk by 1% for this many steps. */
  earlyStop: number;
}

/** A target's optimisation state between steps. */
export interface ScheduleState {
  cost: number;
  /** Steps in a row at (up) or below (down) the success target, since the cost last changed. */
  up: number;
  down: number;
  /** The smallest norm that reached the success target; until one has, the latest norm. */
  best: number;
  bestSuccess: number;
  reached: boolean;
  /** The step at which `best` last shrank by more than 1%. */
  lastImprovement: number;
  steps: number;
  done: boolean;
}

/** The state a target starts a run from: its first, or a restart. */
export function freshSchedule(initialCost: number): ScheduleState {
  return { cost: initialCost, up: 0, down: 0, best: Infinity, bestSuccess: 0, reached: false, lastImprovement: 0, steps: 0, done: false };
}

export interface ScheduleStep {
  next: ScheduleState;
  /** This step's mask is a new smallest one at the success target. */
  improved: boolean;
  /** This step's mask and pattern are to be kept (at the success target and no larger than the best). */
  keep: boolean;
}

/** One step: the state after a step whose mask reached `success` at L1 norm `norm`. */
export function scheduleStep(state: ScheduleState, success: number, norm: number, cfg: ScheduleConfig): ScheduleStep {
  const t = { ...state, steps: state.steps + 1 };
  let improved = false;
  if (success >= cfg.successTarget) {
    t.up++;
    t.down = 0;
    if (norm < t.best * 0.99) t.lastImprovement = t.steps;
    if (norm < t.best) {
      t.best = norm;
      t.bestSuccess = success;
      t.reached = true;
      improved = true;
    }
  } else {
    t.down++;
    t.up = 0;
  }
  if (t.up >= cfg.patience) {
    t.cost *= 2;
    t.up = 0;
  } else if (t.down >= cfg.patience) {
    t.cost /= 2;
    t.down = 0;
  }
  if (!t.reached) {
    t.best = norm;
    t.bestSuccess = Math.max(t.bestSuccess, success);
  }
  if (t.reached && t.steps - t.lastImprovement > cfg.earlyStop) t.done = true;
  return { next: t, improved, keep: success >= cfg.successTarget && norm <= t.best };
}
