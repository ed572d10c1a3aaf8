import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { version_wasm } from '@tensorflow/tfjs-backend-wasm';
import type { Stage } from '../budget.ts';
import { ShapguardError } from '../errors.ts';
import { SCHEMA_VERSION, type Metrics, type ScanReport } from '../output/report.ts';
import type { StageName } from '../progress.ts';
import { DEFAULT_SEED, stageConfigs, STAGE_SHARES, type ScanOptions, type StageConfigs } from './options.ts';
import { DEFAULT_MEMORY } from './plan.ts';
import type { PruneStep } from '../stages/repair/prune.ts';

/**
 * A report with verdict "error", no findings and the full configuration a scan with `options` would have
 * used: the start of every scan, and what a service writes when a job fails before any scan could run.
 */
export function emptyReport(options: ScanOptions, cfg: StageConfigs = stageConfigs(options)): ScanReport {
  const seed = options.seed ?? DEFAULT_SEED;
  const budgetSeconds = options.budgetSeconds ?? 60;
  const range: [number, number] = options.inputRange ?? [0, 1];
  const memory = options.memoryBudgetBytes ?? DEFAULT_MEMORY;
  return {
    schemaVersion: SCHEMA_VERSION,
    verdict: 'error',
    reason: null,
    mode: options.cleanSample === undefined ? 'data-free' : 'few-shot',
    sample: null,
    tool: { name: 'shapguard', version: options.toolVersion },
    libraries: {
      '@tensorflow/tfjs-core': tf.version_core,
      '@tensorflow/tfjs-layers': tfl.version_layers,
      '@tensorflow/tfjs-backend-wasm': version_wasm,
    },
    backend: { name: tf.getBackend() ?? 'none', simd: false },
    input: null,
    model: null,
    config: {
      seed,
      budgetSeconds,
      maxEvals: options.maxEvals ?? null,
      inputRange: range,
      inputRangeSource: options.inputRange ? 'option' : 'default',
      layers: options.layers ?? null,
      memoryBudgetBytes: memory,
      stageShares: STAGE_SHARES,
      synthesis: cfg.synthesis,
      triggerReverse: cfg.triggerReverse,
      detection: cfg.detection,
      allToAll: cfg.allToAll,
      shapley: cfg.shapley,
      pruning: cfg.pruning,
    },
    coverage: null,
    detection: null,
    allToAll: null,
    shapley: [],
    repair: null,
    verification: null,
    budget: { evaluationsUsed: 0, shapleyStoppedBy: null, stages: [] },
    timings: { startedAt: new Date().toISOString(), totalSeconds: 0, stages: {} },
  };
}

/** Rounds to 6 decimals, so reports read the same on every machine and stay short. */
export function round6(x: number): number {
  return Number.isFinite(x) ? Math.round(x * 1e6) / 1e6 : x;
}

export function roundMetrics(m: Metrics): Metrics {
  return {
    reversedAsr: Object.fromEntries(Object.entries(m.reversedAsr).map(([k, v]) => [k, round6(v)])),
    agreement: round6(m.agreement),
    syntheticAccuracy: round6(m.syntheticAccuracy),
  };
}

/**
 * The report of one scan as it is filled in: every stage's evaluation accounting goes through `stage`,
 * every clock reading through `lap`, and a failure through `fail`, so each is done one way.
 */
export class ReportBuilder {
  readonly report: ScanReport;
  private clock: number;
  private readonly started: number;

  constructor(
    options: ScanOptions,
    readonly cfg: StageConfigs,
    private readonly now: () => number,
  ) {
    this.started = now();
    this.report = emptyReport(options, cfg);
    this.clock = now();
  }

  /** Records a stage's evaluations, its steps and what stopped it. */
  stage(name: string, stage: Stage, steps: number | null, stoppedBy: string | null): void {
    this.report.budget.stages.push({ name, evaluations: round6(stage.evaluations), steps, stoppedBy });
  }

  /** Seconds since the last lap, added to `name`'s time (a stage runs once per synthesis start). */
  lap(name: StageName): void {
    const t = this.now();
    this.report.timings.stages[name] = (this.report.timings.stages[name] ?? 0) + (t - this.clock) / 1000;
    this.clock = t;
  }

  /**
   * A failed scan: its verdict and reason from the error, and nothing repaired. Returns whether the error
   * was unexpected (a bug, which the caller may want to log with its stack).
   */
  fail(err: unknown): boolean {
    const report = this.report;
    report.repair = report.repair && { ...report.repair, output: null };
    if (err instanceof ShapguardError) {
      report.verdict = err.kind === 'unsupported' ? 'unsupported' : 'error';
      report.reason = err.message;
      return false;
    }
    report.verdict = 'error';
    report.reason = `internal error: ${(err as Error).message}`;
    return true;
  }

  finish(): ScanReport {
    this.report.timings.totalSeconds = (this.now() - this.started) / 1000;
    return this.report;
  }
}

/** A pruning curve's step, rounded as the report stores it. */
export function roundStep(x: PruneStep): PruneStep {
  return {
    pruned: x.pruned,
    agreement: round6(x.agreement),
    probabilityDrop: round6(x.probabilityDrop),
    asr: Object.fromEntries(Object.entries(x.asr).map(([k, v]) => [k, round6(v)])),
  };
}
