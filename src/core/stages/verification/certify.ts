import type { Stage } from '../../budget.ts';
import type { ModelInfo } from '../../model/model-info.ts';
import type { Rng } from '../../util/rng.ts';
import type { DetectConfig } from '../detection/detect.ts';
import type { ImageBatch } from '../synthesis/synth.ts';
import { reverseTriggers, type ReversedTrigger, type ReverseScope, type TriggerConfig } from '../trigger/reverse.ts';

/**
 * Whether a pruning removed the backdoor: each flagged target's trigger is reversed again on the pruned
 * model, together with the clean classes that had the smallest triggers before, all aiming at a *partial*
 * success (`residualSuccess`, 10% of the images). A backdoor that pruning only weakened (measured: a
 * 5×5 patch still sending 43% of real digits to its target after a prune that removed the reversed
 * trigger) no longer reaches 99% with a small mask, but still reaches half with one. The target counts as
 * repaired only when its trigger is no smaller than `residualOfSmallest` of the smallest clean class's,
 * found in the same search: same model, images and success level, so like is compared with like.
 */

/** One searched class on the pruned model. */
export interface ResidualTrigger {
  target: number;
  /** The smallest mask norm that reached the residual success target, or Infinity when none did. */
  norm: number;
  reached: boolean;
  /** The search ran to its end (not cut by the budget). */
  finished: boolean;
}

export interface ResidualFinding {
  target: number;
  norm: number;
  /** Its norm as a share of the smallest clean class's norm in the same search. */
  ofSmallestClean: number;
  /** The backdoor to this target is gone by the rule. */
  removed: boolean;
  /** Why it is not, in words; null when removed. */
  reason: string | null;
}

/**
 * Why no pruning of the flagged triggers could be certified, or null. The residual search looks for small,
 * compact masks; a flagged trigger whose reversed mask is spread over the image (a blend, an image-wide
 * pattern, or a planted patch the reverse found only in part) is one it would not find again after pruning,
 * so "not found" would prove nothing: measured, two such repairs were certified with the real trigger still
 * sending 43% and 98% of test images to its target.
 */
export function uncheckable(
  classes: readonly { class: number; flagged: boolean; concentration: number }[],
  minConcentration: number,
): string | null {
  const spread = classes.filter((c) => c.flagged && !(c.concentration >= minConcentration));
  if (spread.length === 0) return null;
  const which = spread.map((c) => `${c.class} (concentration ${c.concentration.toFixed(2)})`).join(', ');
  return `the reversed trigger of class(es) ${which} is spread over the image (below ${minConcentration}): the post-repair check cannot search for such a trigger again, so no pruning of it can be certified`;
}

const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : String(x));
/** A share as a reader writes it: 10%, 11.1% (the held-back check's success is a count over a sample, 3/27). */
const percent = (x: number) => `${Number((x * 100).toFixed(1))}%`;

/** The rule, on what a search found for the flagged targets and for the clean classes beside them. */
export function judgeResiduals(
  targets: readonly ResidualTrigger[],
  clean: readonly ResidualTrigger[],
  cfg: DetectConfig,
): ResidualFinding[] {
  const smallest = Math.min(...clean.filter((c) => c.reached).map((c) => c.norm));
  const cut = [...targets, ...clean].some((t) => !t.finished);
  return targets.map((r) => {
    const ofSmallestClean = Number.isFinite(smallest) ? r.norm / smallest : r.reached ? 0 : 1;
    if (cut)
      return {
        target: r.target,
        norm: r.norm,
        ofSmallestClean,
        removed: false,
        reason: `the search for a residual trigger of class ${r.target} was cut by the budget`,
      };
    if (!r.reached) return { target: r.target, norm: r.norm, ofSmallestClean, removed: true, reason: null };
    if (!(r.norm >= cfg.residualOfSmallest * smallest)) {
      return {
        target: r.target,
        norm: r.norm,
        ofSmallestClean,
        removed: false,
        reason: `a trigger sending ${percent(cfg.residualSuccess)} of images to class ${r.target} is still ${fmt(ofSmallestClean)} of the smallest clean class's (at least ${cfg.residualOfSmallest} needed)`,
      };
    }
    return { target: r.target, norm: r.norm, ofSmallestClean, removed: true, reason: null };
  });
}

export interface ResidualSearch {
  findings: ResidualFinding[];
  /** The targets' triggers as found (a later pruning round works on them). */
  triggers: ReversedTrigger[];
  /** The clean classes searched beside the targets, with their norms. */
  baseline: { class: number; norm: number; reached: boolean }[];
  steps: number;
  stoppedBy: string | null;
}

/**
 * Reverses the `targets` and the `compareWith` classes (clean ones, smallest triggers first) on `images`
 * through `info` (the pruned model, or the model with the pruned players masked by `scope.masks`), at the
 * residual success target, each target from two fresh starts (the smaller run kept), and judges them.
 */
export function residualSearch(
  info: ModelInfo,
  images: ImageBatch,
  targets: readonly number[],
  compareWith: readonly number[],
  trigger: TriggerConfig,
  detect: DetectConfig,
  rng: Rng,
  stage: Stage,
  scope: Omit<ReverseScope, 'targets'> = {},
): ResidualSearch {
  const clean = compareWith.slice(0, detect.residualCompare);
  const cfg: TriggerConfig = { ...trigger, successTarget: detect.residualSuccess, restarts: targets.length, restartAccept: 1 };
  const found = reverseTriggers(info, images, [0, 1], cfg, rng, stage, { ...scope, targets: [...targets, ...clean] });
  const cut = found.stoppedBy === 'time' || found.stoppedBy === 'evaluations';
  const of = (t: (typeof found.triggers)[number]): ResidualTrigger => ({
    target: t.target,
    norm: t.reached ? t.norm : Infinity,
    reached: t.reached,
    finished: t.finished && !cut,
  });
  const mine = found.triggers.filter((t) => targets.includes(t.target)).map(of);
  const theirs = found.triggers.filter((t) => clean.includes(t.target)).map(of);
  return {
    findings: judgeResiduals(mine, theirs, detect),
    triggers: found.triggers.filter((t) => targets.includes(t.target)),
    baseline: theirs.map((t) => ({ class: t.target, norm: t.norm, reached: t.reached })),
    steps: found.steps,
    stoppedBy: found.stoppedBy,
  };
}
