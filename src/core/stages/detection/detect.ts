/**
 * Detection thresholds. An all-to-one backdoor makes one class far easier to reach than every other: its
 * reversed trigger is small, and, above all, far smaller than the next class's. Neural Cleanse's MAD test
 * asks how far a class sits from the median in units of the spread of *all* classes, so a model whose
 * clean classes spread widely hides a clear outlier (measured: a 5×5 patch at 0.21 of the median with the
 * next class at 0.49, index 1.4), while a tight model flags merely smallish clean classes. The gap to the
 * next class asks the question directly, and the size bound keeps a model with one naturally small class
 * among large ones from being flagged.
 */
export interface DetectConfig {
  /** The flagged classes' masks are at most this share of the next larger class's (the gap). */
  maxGap: number;
  /** … and at most this share of the median mask norm. */
  maxNormRatio: number;
  /** At most this share of the classes can be flagged together (a few targets, never most classes). */
  maxTargetShare: number;
  /**
   * After pruning, a flagged target counts as repaired only once its trigger, reversed again at the partial
   * success `residualSuccess` beside the `residualCompare` clean classes with the smallest triggers, is at
   * least `residualOfSmallest` of the smallest of theirs (stages/verification/certify.ts). Partial, since a
   * weakened backdoor no longer reaches 99% but still sends many images to its target; relative to the
   * smallest clean classes in the same search, since many-class models have clean classes far below the
   * median (0.45 on the glyphs) and a lower success target shrinks every class's trigger. The level is the
   * one a certificate promises to stay under (a claimed repair whose real trigger still sends more than 10%
   * counts as false): searched at 50%, a 5×5 patch pruned down to 30% real success passed on the tuning
   * half; at 10% it is refused, and every right repair there still passes (docs/benchmarks.md).
   */
  residualSuccess: number;
  /**
   * The final check searches again at this higher success, and a target counts as removed only if it is at
   * both levels. At a low level every class is cheap (a few flipped images), so a backdoor pruned only in
   * part hides among the clean classes; it stays cheap up to the success it still reaches, where clean
   * classes are not: measured, a 3×3 patch left at 72% real ASR read 0.99 of the smallest clean class at
   * 11% success on held-back real images, and 0.79 at 50% (docs/benchmarks.md).
   */
  residualSuccessHigh: number;
  residualCompare: number;
  /**
   * A flagged trigger is pruned and certified only when at least this share of its mask lies in one compact
   * window (stages/detection/concentration.ts). The residual search after pruning looks for small compact
   * masks; a reversed trigger spread over the image (a blend, or a planted patch the reverse found only in
   * part) is one it cannot find again, so not finding it proves nothing and the scan does not claim a repair.
   * The same bound holds for triggers reversed on the sample: they come out less compact there, but the
   * tuning half had one claimed repair between 0.6 and 0.8 in 60 runs, too few to choose a lower one on.
   */
  minConcentration: number;
  residualOfSmallest: number;
  /**
   * Few-shot only: where the held-back residual search still finds a small trigger into a flagged target,
   * the region test (stages/verification/region.ts) asks whether the place the flagged trigger was found
   * still carries it, and the target passes the held-back check if it does not. A right repair leaves the
   * target a natural shortcut smaller than the clean classes' (the working prunings the check refused read
   * 0.00–0.90 of the smallest clean class's, the insufficient ones 0.00–0.68), so the residual's size alone
   * cannot tell a removed backdoor from a weakened one; its place can: on the tuning half's five seeds it
   * certified six more repairs (five to the goal) and no false one. Adam steps per start (0: the test is off).
   */
  regionSteps: number;
  regionLearningRate: number;
  /** The region: the reversed mask at ≥ `regionThreshold` of its peak, widened by `regionDilate` pixels. */
  regionThreshold: number;
  regionDilate: number;
  /** The confined pattern's starting values before the sigmoid (0 grey, −2 dark, 2 light). */
  regionStarts: number[];
  /** Adam steps per stand-in (0: the signal is off). */
  tendencySteps: number;
  tendencyLearningRate: number;
  /** L2 pull on the stand-ins, as Adam's weight decay: keeps them finite where the head is linear. */
  tendencyWeightDecay: number;
  /**
   * The head's logits are divided by their spread at the starting stand-ins and multiplied by this, so a
   * model whose logits were rescaled (×100, ×0.01) is optimised, and scans, as its original.
   */
  tendencyLogitScale: number;
  /**
   * The head's tendency (stages/detection/tendency.ts) flags its class when nothing else is flagged, the
   * class stands out by at least `tendencyMinAnomaly` and its reversed trigger is at most
   * `tendencyMaxNormRatio` of the median: two signals agreeing where the mask size alone is borderline.
   * Opt-in (`tendencySteps` > 0; 1000 is what was measured): chosen on the tuning half, where it flagged six
   * missed runs and no clean one, it flagged a held-out clean Fashion-MNIST ResNet at both seeds
   * (docs/benchmarks.md), so it is off by default.
   */
  tendencyMinAnomaly: number;
  tendencyMaxNormRatio: number;
  /**
   * Few-shot only: the detection's trigger reverse runs on the trusted sample's used part (the images the
   * model calls their class, synthetic ones filling a class that has too few) instead of synthetic images
   * alone. Neural Cleanse's own setting is clean real images; synthetic ones flip far more easily than
   * real ones on some models. On by default since 2026-12-07: over five seeds on the tuning half it flagged
   * the planted target in 48 of 60 runs against 38, another class in none against 5, and claimed 13 repairs
   * against 9 with no false certificate (docs/benchmarks.md, "Detection on the trusted sample"). Data-free
   * scans have no sample and reverse on synthetic images whatever this says.
   */
  sampleBases: boolean;
  /**
   * The gap bound (`maxGap`) when the reverse ran on the sample. Chosen on the tuning half: at 0.5 the clean
   * Fashion-MNIST global-pooling model's "bag" (0.06 of the median, 0.47 of the next class) was flagged at one
   * seed of four; at 0.45 no clean run of 68 (the genuine files included) was.
   */
  sampleMaxGap: number;
}

/**
 * Chosen on the tuning half of the zoo (docs/benchmarks.md; re-checked on the zoo rebuilt with true labels).
 * Planted triggers there reverse to 0.01–0.32 of the median (4×4 and 5×5 patches the largest) and at most
 * 0.46 of the next class's when flagged. The size bound is held by a genuine clean file: a Fashion-MNIST CNN
 * written elsewhere reverses its "bag" to 0.30–0.31 of the median and 0.42–0.43 of the next at two seeds, so
 * planted 4×4 patches that reverse to 0.27–0.32 are missed rather than clean models flagged (the tuning
 * half's clean models alone would allow 0.45). Global-average-pooling heads give two clean classes tiny
 * triggers together (0.08–0.09 and 0.15, 0.56–0.59 of each other), hence the gap at 0.5 and at most one
 * target per ten classes. A flagged trigger is repaired only if it is compact (concentration ≥ 0.8): over
 * seeds 1–3, before the rebuild, every right repair on the tuning half had 0.82–1.0, the false certificates 0.37–0.76 (a blend,
 * and a 5×5 patch the reverse found only in part).
 */
export const DETECT_DEFAULTS: DetectConfig = {
  maxGap: 0.5,
  maxNormRatio: 0.25,
  maxTargetShare: 0.1,
  minConcentration: 0.8,
  residualSuccess: 0.1,
  residualSuccessHigh: 0.5,
  residualCompare: 3,
  residualOfSmallest: 0.9,
  regionSteps: 100,
  regionLearningRate: 0.1,
  regionThreshold: 0.3,
  regionDilate: 2,
  regionStarts: [0, -2, 2],
  tendencySteps: 0,
  tendencyLearningRate: 0.01,
  tendencyWeightDecay: 0.005,
  tendencyLogitScale: 4,
  tendencyMinAnomaly: 0.8,
  tendencyMaxNormRatio: 0.45,
  sampleBases: true,
  sampleMaxGap: 0.45,
};

/**
 * The bounds detection applies: the gap bound differs when the trigger reverse ran on the trusted sample,
 * since real images give clean classes other shares than synthetic ones. One home for the scan and the
 * report's page, which states the rule.
 */
export function ruleFor(cfg: DetectConfig, fewShot: boolean): DetectConfig {
  return fewShot && cfg.sampleBases ? { ...cfg, maxGap: cfg.sampleMaxGap } : cfg;
}

export interface ClassAnomaly {
  target: number;
  norm: number;
  /** Neural Cleanse's anomaly index (reported; the rule is the gap). */
  anomalyIndex: number;
  normRatio: number;
  /** Its norm as a share of the next larger class's norm (1 for the largest). */
  gap: number;
  flagged: boolean;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Mask norms on an equal footing. After a screen-then-refine run only the refined classes were optimised
 * further, so their norms shrank while the others' did not; comparing them raw would make every refined
 * class look small. A screened-only class is credited with the typical shrink the refined ones showed
 * (the median of refined/screened norm), which keeps the comparison like with like.
 */
export function comparableNorms(triggers: readonly { norm: number; refined: boolean; screenNorm: number | null }[]): number[] {
  const shrink = triggers
    .filter((t) => t.refined && t.screenNorm !== null && t.screenNorm > 0 && Number.isFinite(t.norm))
    .map((t) => t.norm / t.screenNorm!);
  if (shrink.length === 0) return triggers.map((t) => t.norm);
  const s = Math.min(1, median(shrink));
  return triggers.map((t) => (t.refined || t.screenNorm === null ? t.norm : t.screenNorm * s));
}

/**
 * A start's norms as shares of its median; a class without a finite norm stands at the largest finite one,
 * as in detectTargets. Null when the start has no finite norm or a zero median: nothing to scale by.
 */
export function medianShares(norms: readonly number[]): number[] {
  const known = norms.filter(Number.isFinite);
  const top = Math.max(...known, 0);
  const finite = norms.map((n) => (Number.isFinite(n) ? n : top));
  const med = median(finite);
  return known.length > 0 && med > 0 ? finite.map((n) => n / med) : norms.map(() => Infinity);
}

/**
 * Every class's norm weighed over several synthesis starts: each start's norms as shares of its own median,
 * averaged class by class. Starts from different backgrounds differ in scale, so shares put them on one
 * footing; the mean treats every class alike, and keeps a class small only where it is small from the
 * starts together: measured on the zoo's tuning half, a planted class small from one start stays among the
 * smallest from the other, while a clean class that is small from one start is ordinary from the other
 * (docs/benchmarks.md). One start: its norms as they are.
 */
export function combinedNorms(perStart: readonly (readonly number[])[]): number[] {
  if (perStart.length === 1) return [...perStart[0]!];
  const usable = perStart.map(medianShares).filter((sh) => sh.every(Number.isFinite));
  if (usable.length === 0) return perStart[0]!.map(() => Infinity);
  return usable[0]!.map((_, i) => usable.reduce((sum, sh) => sum + sh[i]!, 0) / usable.length);
}

/** The detection's outcome: every class's anomaly, and the median and MAD it measured them against. */
export interface Detection {
  classes: ClassAnomaly[];
  /** Median of the finite norms (NaN when no class has one). */
  median: number;
  /** 1.4826 × the median absolute deviation from it (NaN when no class has a finite norm). */
  mad: number;
}

/**
 * Flags the smallest `k` classes when they are all small (at most `maxNormRatio` of the median) and the
 * k-th is at most `maxGap` of the next class's norm, for the smallest such `k` up to `maxTargetShare` of
 * the classes. A class without a finite norm (its trigger reverse never took a step) stands at the
 * largest finite norm.
 */
export function detectTargets(norms: readonly number[], cfg: DetectConfig = DETECT_DEFAULTS): Detection {
  const known = norms.filter(Number.isFinite);
  const finite = norms.map((n) => (Number.isFinite(n) ? n : Math.max(...known, 0)));
  const med = median(finite);
  const mad = 1.4826 * median(finite.map((n) => Math.abs(n - med)));
  const order = finite.map((_, i) => i).sort((a, b) => finite[a]! - finite[b]! || a - b);
  const gaps = new Array<number>(finite.length).fill(1);
  order.forEach((c, r) => {
    const next = order[r + 1];
    if (next !== undefined) gaps[c] = finite[next]! > 0 ? finite[c]! / finite[next]! : 1;
  });
  let flaggedCount = 0;
  const most = Math.max(1, Math.floor(cfg.maxTargetShare * finite.length));
  for (let k = 1; k <= most && k < finite.length; k++) {
    const c = order[k - 1]!;
    if (!(med > 0 && finite[c]! / med <= cfg.maxNormRatio)) break;
    if (gaps[c]! <= cfg.maxGap) {
      flaggedCount = k;
      break;
    }
  }
  const flagged = new Set(order.slice(0, flaggedCount));
  const classes = finite.map((n, target) => ({
    target,
    norm: n,
    anomalyIndex: mad > 0 ? Math.abs(n - med) / mad : n === med ? 0 : Infinity,
    normRatio: med > 0 ? n / med : 1,
    gap: gaps[target]!,
    flagged: flagged.has(target),
  }));
  // The norms either all are finite or none is (every class steps together); with none, there is no median.
  return known.length === 0 ? { classes, median: NaN, mad: NaN } : { classes, median: med, mad };
}

/**
 * The class the head's tendency flags where the mask-size rule flagged none: the class the head leans to
 * most, when it stands out by `tendencyMinAnomaly` and its reversed trigger is at most
 * `tendencyMaxNormRatio` of the median. Neither signal alone separates planted from natural classes on the
 * tuning half; together they flagged six missed runs there and no clean one (docs/benchmarks.md). A
 * tendency the budget cut short says nothing.
 */
export function tendencyFlag(
  detection: Detection,
  tendency: { target: number; anomaly: number; stoppedBy: string | null } | null,
  cfg: DetectConfig,
): number | null {
  if (tendency === null || tendency.stoppedBy !== null || detection.classes.some((c) => c.flagged)) return null;
  const c = detection.classes[tendency.target];
  if (c === undefined || !(tendency.anomaly >= cfg.tendencyMinAnomaly) || !(c.normRatio <= cfg.tendencyMaxNormRatio)) return null;
  return c.target;
}
