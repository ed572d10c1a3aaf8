import type { RegionFinding } from '../stages/verification/region.ts';
import type { ModelDigest } from '../util/digest.ts';
import type { InputRangeSource } from '../model/input-range.ts';
import type { DetectConfig } from '../stages/detection/detect.ts';
import type { AllToAllConfig } from '../stages/detection/pairs.ts';
import type { Tendency } from '../stages/detection/tendency.ts';
import type { PruneConfig, PruneStep } from '../stages/repair/prune.ts';
import type { ShapleyConfig } from '../stages/shapley/shapley.ts';
import type { SynthConfig } from '../stages/synthesis/synth.ts';
import type { TriggerConfig } from '../stages/trigger/reverse.ts';

export const SCHEMA_VERSION = 2;

export type Verdict = 'clean' | 'backdoor' | 'incomplete' | 'error' | 'unsupported';

/** Exit codes other tooling relies on: 0 clean, 1 backdoor, 2 error or incomplete, 3 unsupported. */
export function exitCodeFor(verdict: Verdict): 0 | 1 | 2 | 3 {
  return verdict === 'clean' ? 0 : verdict === 'backdoor' ? 1 : verdict === 'unsupported' ? 3 : 2;
}

/**
 * What may be deployed after a scan: the upload itself (clean), the repaired copy in the output folder
 * (a backdoor removed and the removal certified), or nothing.
 */
export type Ship = 'original' | 'repaired' | 'nothing';

/** What a scan lets ship, from its report: one rule for verdict.json, the tags and the callbacks. */
export function shipOf(report: Pick<ScanReport, 'verdict' | 'repair'>): Ship {
  if (report.verdict === 'clean') return 'original';
  return report.verdict === 'backdoor' && report.repair?.status === 'repaired' ? 'repaired' : 'nothing';
}

export interface ScanConfigReport {
  seed: number;
  budgetSeconds: number;
  maxEvals: number | null;
  inputRange: [number, number];
  /** Where inputRange came from: --input-range, the model's first layer, or the [0, 1] default. */
  inputRangeSource: InputRangeSource;
  layers: string[] | null;
  memoryBudgetBytes: number;
  stageShares: Record<string, number>;
  synthesis: SynthConfig;
  triggerReverse: TriggerConfig;
  detection: DetectConfig;
  allToAll: AllToAllConfig;
  shapley: ShapleyConfig;
  pruning: PruneConfig;
}

/**
 * The all-to-all check (stages/detection/pairs.ts): a trigger per ordered source → target pair on trusted
 * images, the cheapest mapping over them, and how far each mapped pair's trigger carries that mapping.
 */
export interface AllToAllReport {
  /** Whether it ran: few-shot mode, and only when no all-to-one target was flagged first. */
  checked: boolean;
  /** Why it did not run, or what cut it short (null: it ran to the end). */
  reason: string | null;
  /** Trusted (real) images among each source class's bases; the rest are synthetic. */
  realPerSource: number[];
  /** norms[s][t]: the L1 norm of the pair's mask (null on the diagonal and where it never reached success). */
  norms: (number | null)[][];
  /** The cheapest mapping: source s → mapping[s]. */
  mapping: number[];
  /** Per source: the median over the other classes of the share its mapped trigger sends to their own target. */
  follows: number[];
  /** The mean of `follows`; flagged at config.allToAll.minScore or more. */
  score: number;
  /** The same check on the pruned model, on held-back images (null: no pruning was written to check). */
  repairCheck?: AllToAllRepairCheck | null;
  flagged: boolean;
  /**
   * Per target: the median over sources of the share of the other classes' images that pair s → t's trigger
   * sends to t (null where nothing was measured). A planted all-to-one trigger carries from any class.
   */
  universal?: (number | null)[];
  /**
   * The class the universality signal flagged (at least config.allToAll.minUniversal and
   * config.allToAll.universalRatio times the next class's), null: none. Absent in reports before it existed.
   */
  universalTarget?: number | null;
}

export interface ClassReport {
  class: number;
  /** The synthesis start (index into detection.starts) whose trigger for this class is reported. */
  start: number;
  maskNorm: number;
  /**
   * The norm the detection compares: with one synthesis start its comparable norm (comparableNorms: maskNorm,
   * or a screened class's scaled norm); with several, the mean over the starts of its share of each start's
   * median (combinedNorms).
   */
  comparableNorm: number;
  anomalyIndex: number;
  normRatio: number;
  /** Its comparable norm as a share of the next larger class's (the detection's gap). */
  gap: number;
  /** The share of the mask's mass in its best square window (stages/detection/concentration.ts). */
  concentration: number;
  reached: boolean;
  success: number;
  steps: number;
  refined: boolean;
  /** A fresh-start second run's best norm (null: none ran, or it never reached the success target). */
  restartNorm: number | null;
  flagged: boolean;
}

/** A player (see players.ts): a layer's output channel, a position of the map a Flatten feeds into it, or one channel of such a position (a cell). */
export interface PlayerRef {
  layer: string;
  channel: number | null;
  position: [number, number] | null;
}

export interface PlayerValue extends PlayerRef {
  value: number;
}

export interface ShapleyReport {
  /** The flagged class the game's stamped images aim at; null for an all-to-all backdoor's game (see `pairs`). */
  target: number | null;
  /** An all-to-all backdoor's game: every mapped source → target pair, its trigger on the source's images. */
  pairs?: [number, number][];
  /** A game over cells: the position players split into them (`players` lists only those cells). */
  refines?: PlayerRef[];
  /** Prune-and-recheck round this estimate belongs to (0 first). */
  round: number;
  permutations: number;
  coalitions: number;
  evaluations: number;
  converged: boolean;
  stoppedBy: string;
  fullValue: number;
  /** All players, by decreasing estimate. */
  players: PlayerValue[];
}

/** One prune-and-recheck round: what it pruned and the flagged targets' triggers reversed afterwards. */
export interface RoundReport {
  round: number;
  targets: number[];
  pruned: PlayerRef[];
  residual: { target: number; maskNorm: number; reached: boolean }[];
}

/**
 * The all-to-all repair's check: the whole pair check again (every pair's trigger from fresh starts, the
 * cheapest mapping, its transfer) on the pruned model, on the sample's held-back images the repair never
 * saw, judged by the rule that flagged the model.
 */
export interface AllToAllRepairCheck {
  /** Held-back images the original model calls their class: the check's bases. */
  images: number;
  perSource: number[];
  mapping: number[];
  follows: number[];
  score: number;
  /**
   * The same measure on the original model, same images and stream (null: not measured): the check's power.
   * It counts only when this is flagged and `score` is not. Absent in reports before it existed.
   */
  original?: number | null;
  passed: boolean;
  /** Why it did not pass (null: passed). */
  reason: string | null;
  /** Accuracy on every held-back image, before and after the pruning, and the Wilson interval after. */
  accuracyBefore: number;
  accuracyAfter: number;
  intervalAfter: [number, number];
}

/**
 * The post-repair check: each flagged target's trigger reversed again, from fresh starts, on the written
 * model and on fresh synthetic images the repair never saw, against the clean classes' norms before pruning.
 */
export interface RepairCheck {
  /** Fresh images the check synthesized, and the share of them the model calls their class confidently. */
  images: number;
  synthesisConfidence: number;
  /** The partial attack success every searched trigger aimed at. */
  success: number;
  passed: boolean;
  /** The clean classes searched beside the targets, and their triggers' norms (null: none reached). */
  baseline: { class: number; norm: number }[];
  targets: {
    target: number;
    /** The success level whose search judged this target (the worst of the levels searched). */
    success: number;
    /** The fresh trigger's mask norm (Infinity, written null, when none reached the success target). */
    residualNorm: number;
    /** As a share of the smallest clean class's norm in the same search. */
    ofSmallestClean: number;
    removed: boolean;
    reason: string | null;
    /** The old reversed trigger's success on the fresh images, on the repaired model. */
    oldTriggerAsr: number;
  }[];
  /** Few-shot mode: the same search on the sample's held-back real images, and their accuracy (null: data-free). */
  heldBack: HeldBackCheck | null;
}

export interface HeldBackCheck {
  images: number;
  /** The partial success searched for here: the check's own, or more where the sample is too small to resolve it. */
  success: number;
  /** Share of the held-back images predicted as their folder's class, by the original and the repaired model. */
  accuracyBefore: number;
  accuracyAfter: number;
  /** 95% Wilson interval of accuracyAfter: what so few images can say. */
  intervalAfter: [number, number];
  baseline: RepairCheck['baseline'];
  targets: RepairCheck['targets'];
  /**
   * The region test, for each target whose residual trigger here was still small (empty when none was, or
   * when the check had already failed elsewhere): such a target passes if its region is cleared.
   */
  region: RegionFinding[];
}

/** Few-shot mode's trusted sample as the report records it: sizes and digest, never the images. */
export interface SampleReport {
  images: number;
  perClass: number[];
  bytes: number;
  /** sha256 over the sorted "<path> <sha256>" lines of the images used. */
  digest: string;
  /** Images not of the model's input size, resized (bilinear) to it. */
  resized: number;
  /** Files skipped as not images. */
  ignored: number;
  /** Images the repair uses, and those held back for the final check only. */
  used: number;
  heldBack: number;
  /** Of the used images, those the model predicts as their folder's class (the Shapley bases among them). */
  predictedRight: number;
  /** The stages the sample served. */
  stages: string[];
}

export interface Metrics {
  /** Reversed-trigger success per flagged target on D_ver (share of non-target images sent to it). */
  reversedAsr: Record<string, number>;
  /** Agreement with the original model's predictions on clean D_ver. */
  agreement: number;
  /** Share of D_ver images predicted as the class they were synthesised for. */
  syntheticAccuracy: number;
}

export interface StageReport {
  name: string;
  evaluations: number;
  steps: number | null;
  stoppedBy: string | null;
}

export interface ScanReport {
  schemaVersion: number;
  verdict: Verdict;
  reason: string | null;
  /** data-free: every image the scan used it synthesized; few-shot: a trusted sample took part (see `sample`). */
  mode: 'data-free' | 'few-shot';
  sample: SampleReport | null;
  tool: { name: 'shapguard'; version: string };
  libraries: Record<string, string>;
  backend: { name: string; simd: boolean };
  input: { format: string; entry: string; digest: ModelDigest } | null;
  model: {
    inputShape: [number, number, number];
    classes: number;
    parameters: number;
    outputs: 'probabilities' | 'logits';
    batchNormLayers: number;
    playerLayers: string[];
    players: number;
  } | null;
  config: ScanConfigReport;
  coverage: {
    classesScanned: number;
    classesTotal: number;
    synthesisConfidence: number;
    notes: string[];
  } | null;
  detection: {
    median: number;
    mad: number;
    classes: ClassReport[];
    /** Every flagged class: the mask-size rule's, the head tendency's, or the pair check's universal class (see flaggedBy). */
    flagged: number[];
    /**
     * Which signal flagged them: the mask-size outlier rule, the classifier head's tendency agreeing with a
     * smallish reversed trigger, or (few-shot) the pair triggers' universality.
     */
    flaggedBy?: 'mask-size' | 'head-tendency' | 'pair-universality' | null;
    /** The classifier head's tendency (stages/detection/tendency.ts): data-free, where the mask size flagged nothing; else null. */
    tendency?: Tendency | null;
    /** Each synthesis start: its background, and every class's comparable norm from it and their median. */
    starts: { background: number; median: number; comparableNorms: number[] }[];
  } | null;
  /** The all-to-all check; null until detection ran. */
  allToAll: AllToAllReport | null;
  shapley: ShapleyReport[];
  repair: {
    status: 'repaired' | 'not-repaired' | 'not-needed';
    reason: string | null;
    pruned: PlayerValue[];
    curve: PruneStep[];
    rounds: RoundReport[];
    /** The check a repair had to pass before it counted (null: no repair was attempted, or none could be written). */
    check: RepairCheck | null;
    output: { digest: ModelDigest } | null;
  } | null;
  verification: { images: number; before: Metrics; after: Metrics | null } | null;
  budget: {
    evaluationsUsed: number;
    shapleyStoppedBy: string | null;
    stages: StageReport[];
  };
  /** Everything that depends on the clock lives here, so the rest is reproducible byte for byte. */
  timings: {
    /** When the scan started (ISO 8601, UTC): the date a reviewer signs off against. */
    startedAt: string;
    totalSeconds: number;
    stages: Record<string, number>;
  };
}

/**
 * A reverse-engineered trigger for people to look at (report.html): each flagged target's, or, when none is
 * flagged, the class with the smallest trigger (the closest call of a clean verdict).
 */
export interface TriggerEvidence {
  target: number;
  /** A pair trigger's source class (the one that found a universal target), null for a class's own trigger. */
  source: number | null;
  flagged: boolean;
  /** [height, width, channels] of the model's input. */
  shape: [number, number, number];
  /** height × width, in [0, 1]. */
  mask: Float32Array;
  /** height × width × channels, in [0, 1] (the engine's unit range). */
  pattern: Float32Array;
  /** A synthesized input of another class, and the same with the trigger stamped on it. */
  input: Float32Array;
  stamped: Float32Array;
}
