import type { LoadedModel } from '../model/loaded-model.ts';
import type { ScanReport, TriggerEvidence } from '../output/report.ts';
import type { PruneStep } from '../stages/repair/prune.ts';
import { prepare } from './context.ts';
import { stageConfigs, type ScanOptions } from './options.ts';
import { repairRounds } from './repair.ts';
import { ReportBuilder, round6 } from './report-builder.ts';
import type { ScanContext } from './context.ts';
import {
  allToAllNotRun,
  allToAllStep,
  DATA_FREE_NO_ALL_TO_ALL,
  detectStep,
  repairImages,
  startRuns,
  writeRepaired,
  type Findings,
} from './steps.ts';

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
    const allToAllFlagged = allToAllFor(ctx, findings);
    if (findings.incomplete !== null && findings.flagged.length === 0) {
      report.verdict = 'incomplete';
      report.reason = findings.incomplete;
    } else if (allToAllFlagged) {
      report.verdict = 'backdoor';
      report.repair = { ...NO_REPAIR, status: 'not-repaired', reason: ALL_TO_ALL_UNREPAIRED };
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
 * Why a found all-to-all backdoor is not repaired: pruning for it (Shapley values over the mapped pairs'
 * players) is not built yet, and a repair the scan cannot check is never written.
 */
export const ALL_TO_ALL_UNREPAIRED =
  'an all-to-all backdoor (each class sent to its own target by one trigger; see allToAll) cannot be repaired by this version: ship nothing from this upload';

/**
 * The all-to-all check where it applies (few-shot, nothing flagged all-to-one, the search complete); true
 * when it flags. Elsewhere its report says why it did not run.
 */
function allToAllFor(ctx: ScanContext, findings: Findings): boolean {
  if (ctx.fewShot === null) return allToAllNotRun(ctx, DATA_FREE_NO_ALL_TO_ALL);
  if (findings.flagged.length > 0) return allToAllNotRun(ctx, 'an all-to-one target was flagged; the scan repairs that backdoor first');
  if (findings.incomplete !== null) return allToAllNotRun(ctx, 'the all-to-one search did not cover every class');
  return allToAllStep(ctx, findings.run.synth);
}

function roundStep(x: PruneStep): PruneStep {
  return {
    pruned: x.pruned,
    agreement: round6(x.agreement),
    probabilityDrop: round6(x.probabilityDrop),
    asr: Object.fromEntries(Object.entries(x.asr).map(([k, v]) => [k, round6(v)])),
  };
}
