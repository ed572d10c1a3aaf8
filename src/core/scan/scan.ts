import type { LoadedModel } from '../model/loaded-model.ts';
import type { ScanReport, TriggerEvidence } from '../output/report.ts';
import { prepare } from './context.ts';
import { stageConfigs, type ScanOptions } from './options.ts';
import { repairRounds } from './repair.ts';
import { ReportBuilder, round6, roundStep } from './report-builder.ts';
import type { ScanContext } from './context.ts';
import {
  allToAllNotRun,
  allToAllStep,
  DATA_FREE_NO_ALL_TO_ALL,
  detectStep,
  repairImages,
  startRuns,
  writeRepaired,
  type AllToAllFound,
  type Findings,
} from './steps.ts';
import { repairAllToAll } from './all-to-all-repair.ts';

export type { ScanOptions } from './options.ts';
export { emptyReport } from './report-builder.ts';

export interface ScanResult {
  report: ScanReport;
  /** The repaired model's files (same names as the input), only when a repair was made. */
  repaired: Map<string, Uint8Array> | null;
  /** The flagged targets' triggers as found before any pruning (empty when nothing was flagged). */
  evidence: TriggerEvidence[];
}

/**
 * Scans a model for a backdoor and repairs it: the whole data-free ShapPruning pipeline under one budget,
 * prepare → (synthesize → reverse, per start) → detect → repair → write and verify. Never throws for bad input:
 * problems become a report with verdict "error" or "unsupported" and a precise reason. The caller
 * initialises the wasm backend first.
 */
export async function scanModel(files: ReadonlyMap<string, Uint8Array>, options: ScanOptions): Promise<ScanResult> {
  const now = options.now ?? (() => performance.now());
  const out = new ReportBuilder(options, stageConfigs(options), now);
  const report = out.report;
  let loaded: LoadedModel | undefined;
  let repaired: Map<string, Uint8Array> | null = null;
  let evidence: TriggerEvidence[] = [];
  try {
    const ctx = await prepare(files, options, out, now, (m) => (loaded = m));
    const findings = detectStep(ctx, startRuns(ctx));
    const synth = findings.run.synth;
    evidence = findings.evidence;
    const allToAll = allToAllFor(ctx, findings);
    if (findings.incomplete !== null && findings.flagged.length === 0) {
      report.verdict = 'incomplete';
      report.reason = findings.incomplete;
    } else if (allToAll !== null) {
      report.verdict = 'backdoor';
      repaired = await repairAllToAll(ctx, synth, findings, allToAll);
    } else if (findings.flagged.length === 0) {
      report.verdict = 'clean';
      report.repair = { ...NO_REPAIR, status: 'not-needed' };
    } else if (findings.unrepairable !== null) {
      report.verdict = 'backdoor';
      report.repair = { ...NO_REPAIR, status: 'not-repaired', reason: findings.unrepairable };
    } else {
      report.verdict = 'backdoor';
      const { choice, rounds, valueOf } = repairRounds(ctx, repairImages(ctx, synth), findings);
      out.lap('shapley');
      report.budget.shapleyStoppedBy = report.shapley.map((x) => x.stoppedBy).join(',');
      report.repair = {
        status: choice.status,
        reason: choice.reason,
        pruned: choice.pruned.map((k) => ({ ...ctx.players.players[k]!, value: valueOf(k) })),
        curve: choice.curve.map(roundStep),
        rounds,
        check: null,
        output: null,
      };
      if (choice.status === 'repaired') repaired = await writeRepaired(ctx, synth, findings, choice);
    }
    report.budget.evaluationsUsed = round6(ctx.budget.evaluations);
  } catch (err) {
    repaired = null;
    if (out.fail(err)) options.onInternalError?.(err);
  } finally {
    loaded?.model.dispose();
  }
  return { report: out.finish(), repaired, evidence };
}

const NO_REPAIR = { reason: null, pruned: [], curve: [], rounds: [], check: null, output: null };

/**
 * The all-to-all check where it applies (few-shot, nothing flagged all-to-one, the search complete): what
 * it found, or null. Elsewhere its report says why it did not run.
 */
function allToAllFor(ctx: ScanContext, findings: Findings): AllToAllFound | null {
  if (ctx.fewShot === null) return allToAllNotRun(ctx, DATA_FREE_NO_ALL_TO_ALL);
  if (findings.flagged.length > 0) return allToAllNotRun(ctx, 'an all-to-one target was flagged; the scan repairs that backdoor first');
  if (findings.incomplete !== null) return allToAllNotRun(ctx, 'the all-to-one search did not cover every class');
  return allToAllStep(ctx, findings.run.synth);
}
