import type { ProgressFn } from '../progress.ts';
import { DETECT_DEFAULTS, type DetectConfig } from '../stages/detection/detect.ts';
import { ALL_TO_ALL_DEFAULTS, type AllToAllConfig } from '../stages/detection/pairs.ts';
import { PRUNE_DEFAULTS, type PruneConfig } from '../stages/repair/prune.ts';
import { SHAPLEY_DEFAULTS, type ShapleyConfig } from '../stages/shapley/shapley.ts';
import { SYNTH_DEFAULTS, type SynthConfig } from '../stages/synthesis/synth.ts';
import { TRIGGER_DEFAULTS, type TriggerConfig } from '../stages/trigger/reverse.ts';
import type { SampleFile } from '../sample/sample.ts';

/** The seed a scan uses when none is given: one default for the CLI, the Action and the service, so the same model gives the same prunes everywhere. */
export const DEFAULT_SEED = 1;

export interface ScanOptions {
  /** Path of model.json among the files. */
  entry?: string;
  seed?: number;
  /** Wall-clock bound of the whole scan, seconds (load and save excluded). */
  budgetSeconds?: number;
  /** Evaluation bound (full-forward row equivalents); deterministic, unlike the clock. */
  maxEvals?: number;
  inputRange?: [number, number];
  /** Player layers (`name`, or `name:positions`); default the last Conv2D and a Flatten-fed Dense's positions. */
  layers?: string[];
  /** Bytes the scan's activations may take; sizes batches. Default fits a 128 MB Worker isolate. */
  memoryBudgetBytes?: number;
  toolVersion: string;
  onProgress?: ProgressFn;
  /** Sees unexpected exceptions (the report keeps only their message), e.g. to log a stack. */
  onInternalError?: (err: unknown) => void;
  now?: () => number;
  /**
   * Few-shot mode: a trusted clean sample, one folder per class index (src/core/sample/sample.ts). Its images
   * join the synthetic ones as trigger bases, make the accuracy guard, and a held-back part checks the repair.
   */
  cleanSample?: readonly SampleFile[];
  synthesis?: Partial<SynthConfig>;
  triggerReverse?: Partial<TriggerConfig>;
  detection?: Partial<DetectConfig>;
  allToAll?: Partial<AllToAllConfig>;
  shapley?: Partial<ShapleyConfig>;
  pruning?: Partial<PruneConfig>;
}

/** Every stage's settings: the defaults with the caller's overrides. */
export interface StageConfigs {
  synthesis: SynthConfig;
  triggerReverse: TriggerConfig;
  detection: DetectConfig;
  allToAll: AllToAllConfig;
  shapley: ShapleyConfig;
  pruning: PruneConfig;
}

export function stageConfigs(options: Omit<ScanOptions, 'toolVersion'>): StageConfigs {
  return {
    synthesis: { ...SYNTH_DEFAULTS, ...options.synthesis },
    triggerReverse: { ...TRIGGER_DEFAULTS, ...options.triggerReverse },
    detection: { ...DETECT_DEFAULTS, ...options.detection },
    allToAll: { ...ALL_TO_ALL_DEFAULTS, ...options.allToAll },
    shapley: { ...SHAPLEY_DEFAULTS, ...options.shapley },
    pruning: { ...PRUNE_DEFAULTS, ...options.pruning },
  };
}

/**
 * Shares of what is left of the budget when each stage starts: synthesis 20% of the whole, trigger reverse
 * 50% (0.625 of the 80% left); where the opt-in head tendency runs, up to 30% of what is left (it needs a
 * few seconds); then per prune round Shapley, pruning and the recheck split the rest
 * (the last round's Shapley may take 80% of what remains). The all-to-all check runs only when nothing was
 * flagged, so no repair follows it: it may take 90% of what is left.
 */
export const STAGE_SHARES = {
  synthesis: 0.2,
  triggerReverse: 0.625,
  tendency: 0.3,
  allToAll: 0.9,
  shapleyRound: 0.6,
  shapleyLastRound: 0.8,
  pruning: 0.5,
  cells: 0.5,
  recheck: 0.5,
};

/** A class counts as scanned once its trigger was optimised for this many steps. */
export const MIN_STEPS_PER_CLASS = 10;
