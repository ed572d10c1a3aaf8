/** Detection thresholds; defaults follow Neural Cleanse plus a size criterion (see the notes). */
export interface DetectConfig {
  /** Anomaly index a target's mask must exceed (Neural Cleanse: 2). */
  anomalyThreshold: number;
  /**
   * The flagged mask must also be at most this fraction of the median mask norm: MAD alone flags clean
   * classes whose masks are merely somewhat smaller than the rest when the norms are tightly clustered.
   */
  maxNormRatio: number;
  /**
   * A far stronger outlier may have a larger mask: flagged when its anomaly index exceeds strongAnomaly and
   * its mask is at most strongMaxNormRatio of the median. A bigger planted patch reverses to a bigger mask
   * (a 4×4 MNIST patch: 0.23–0.32 of the median) and is caught when it stands far outside the others
   * (index 5.7); at index 1.8–2.2 (4 of 5 seeds) it cannot be told from the clean classes with small
   * masks (a clean glyph class: 0.28 at index 2.3–2.9; a genuine Fashion-MNIST "bag": 0.34 at index 1.7).
   */
  strongAnomaly: number;
  strongMaxNormRatio: number;
  /**
   * After pruning, a flagged target's re-reversed trigger counts as removed only once its norm is at least
   * this fraction of the original median: stricter than detection, since a partly removed backdoor still
   * yields a smallish trigger (measured: 0.35 on a false repair whose real ASR stayed at 91%, ≈ 1.0 after a
   * real one).
   */
  residualRatio: number;
}

/**
 * maxNormRatio 0.25: 3×3 planted triggers measured 0.02–0.17 of the median on our fixtures, while clean
 * classes with natural small triggers measured 0.28 (a glyph class) to 0.32–0.34 (a genuine Fashion-MNIST
 * model's "bag") and clean MNIST ≥ 0.39; no clean class measured an index above 3 below 0.5 of the median.
 */
export const DETECT_DEFAULTS: DetectConfig = {
  anomalyThreshold: 2,
  maxNormRatio: 0.25,
  strongAnomaly: 5,
  strongMaxNormRatio: 0.4,
  residualRatio: 0.5,
};

export interface ClassAnomaly {
  target: number;
  norm: number;
  anomalyIndex: number;
  normRatio: number;
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

/** The detection's outcome: every class's anomaly, and the median and MAD it measured them against. */
export interface Detection {
  classes: ClassAnomaly[];
  /** Median of the finite norms (NaN when no class has one). */
  median: number;
  /** 1.4826 × the median absolute deviation from it (NaN when no class has a finite norm). */
  mad: number;
}

/**
 * Median absolute deviation outlier test on the reversed masks' L1 norms (Neural Cleanse): a class whose
 * mask is abnormally small is the likely target, since a trigger is a shortcut to it from anywhere. A class
 * without a finite norm (its trigger reverse never took a step) stands at the largest finite norm.
 */
export function detectTargets(norms: readonly number[], cfg: DetectConfig = DETECT_DEFAULTS): Detection {
  const known = norms.filter(Number.isFinite);
  const finite = norms.map((n) => (Number.isFinite(n) ? n : Math.max(...known, 0)));
  const med = median(finite);
  const mad = 1.4826 * median(finite.map((n) => Math.abs(n - med)));
  const classes = finite.map((n, target) => {
    const anomalyIndex = mad > 0 ? Math.abs(n - med) / mad : n === med ? 0 : Infinity;
    const normRatio = med > 0 ? n / med : 1;
    return {
      target,
      norm: n,
      anomalyIndex,
      normRatio,
      flagged:
        n < med &&
        anomalyIndex > cfg.anomalyThreshold &&
        (normRatio <= cfg.maxNormRatio || (anomalyIndex > cfg.strongAnomaly && normRatio <= cfg.strongMaxNormRatio)),
    };
  });
  // The norms either all are finite or none is (every class steps together); with none, there is no median.
  return known.length === 0 ? { classes, median: NaN, mad: NaN } : { classes, median: med, mad };
}
