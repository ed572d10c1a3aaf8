// `npm run bench:rules -- --json a.json,b.json [--ratios 0.2,0.25,0.3] [--gaps 0.4,0.5,0.6]`: the detection rule
// (stages/detection/detect.ts) swept over its two bounds, offline, on the norms that `npm run bench:probe --json`
// or `npm run bench:zoo --json` (each class's share of the median, e.g. few-shot with detection.sampleBases)
// recorded. Thresholds are chosen on the tuning half's probes, so this prints one table per half present in the
// files, and the held-out table is for reporting, never for choosing (docs/benchmarks.md).
import { readFileSync } from 'node:fs';
import { combinedNorms, DETECT_DEFAULTS, detectTargets } from '../src/core/stages/detection/detect.ts';
import type { ProbeRow } from './detection-probe.ts';
import type { Half } from '../tools/fixtures/zoo.ts';
import { cliArg, effective, type BenchModel, type ZooRun } from './zoo.ts';

/** One scan, as far as the rule needs it: every class's norms per start, and the planted target. */
interface ProbeRun {
  model: string;
  seed: number;
  half: Half;
  planted: number | null;
  startNorms: number[][];
}

/** What a rule does over a set of runs. */
export interface RuleTally {
  planted: number;
  hit: number;
  /** Runs flagging some class but not the planted target. */
  wrong: number;
  clean: number;
  cleanFlagged: number;
  /** The clean runs flagged, as model/seed. */
  falsePositives: string[];
}

/** One run per model and seed (a probe writes a row per probed class; their norms are the same). */
export function probeRuns(rows: readonly ProbeRow[]): ProbeRun[] {
  const seen = new Map<string, ProbeRun>();
  for (const r of rows) {
    const key = `${r.model}/${r.seed}`;
    if (!seen.has(key)) seen.set(key, { model: r.model, seed: r.seed, half: r.half, planted: r.planted, startNorms: r.startNorms });
  }
  return [...seen.values()];
}

/**
 * Runs saved by bench:zoo as the rule needs them: one start whose norms are the classes' shares of the
 * median (the rule is scale-free, so shares decide as the norms do). Blended triggers are left out, as the
 * probe leaves them out: they are not what the size rule is chosen for.
 */
export function zooRuns(saved: { models: BenchModel[]; runs: ZooRun[] }): ProbeRun[] {
  const byName = new Map(saved.models.map((m) => [m.name, m]));
  return saved.runs.flatMap((r) => {
    const m = byName.get(r.model)!;
    if (m.attack !== null && (!effective(m) || m.attack.trigger.kind === 'blended')) return [];
    return [{ model: r.model, seed: r.seed, half: m.half, planted: m.attack?.target ?? null, startNorms: [r.ratios] }];
  });
}

/** Applies the rule with these two bounds to every run, the starts weighed as the scan weighs them. */
export function tally(runs: readonly ProbeRun[], maxNormRatio: number, maxGap: number): RuleTally {
  const t: RuleTally = { planted: 0, hit: 0, wrong: 0, clean: 0, cleanFlagged: 0, falsePositives: [] };
  for (const run of runs) {
    const d = detectTargets(combinedNorms(run.startNorms), { ...DETECT_DEFAULTS, maxNormRatio, maxGap });
    const flagged = d.classes.filter((c) => c.flagged).map((c) => c.target);
    if (run.planted === null) {
      t.clean++;
      if (flagged.length > 0) {
        t.cleanFlagged++;
        t.falsePositives.push(`${run.model}/s${run.seed}`);
      }
    } else {
      t.planted++;
      if (flagged.includes(run.planted)) t.hit++;
      else if (flagged.length > 0) t.wrong++;
    }
  }
  return t;
}

if (process.argv[1]?.endsWith('detection-rules.ts')) {
  const files = (cliArg('json') ?? '').split(',').filter(Boolean);
  if (files.length === 0) throw new Error('--json a.json[,b.json]: the probe runs to sweep (npm run bench:probe -- --json)');
  const list = (name: string, fallback: number[]) => cliArg(name)?.split(',').map(Number) ?? fallback;
  const ratios = list('ratios', [0.2, 0.25, 0.3, 0.35, 0.4]);
  const gaps = list('gaps', [0.4, 0.5, 0.6]);
  const runs = files.flatMap((f) => {
    const saved = JSON.parse(readFileSync(f, 'utf8')) as ProbeRow[] | { models: BenchModel[]; runs: ZooRun[] };
    return Array.isArray(saved) ? probeRuns(saved) : zooRuns(saved);
  });
  for (const half of ['tuning', 'held-out'] satisfies Half[]) {
    const mine = runs.filter((r) => r.half === half);
    if (mine.length === 0) continue;
    console.log(`\n#### ${half}: planted target flagged / other class flagged / clean runs flagged\n`);
    console.log(`| maxNormRatio | ${gaps.map((g) => `maxGap ${g}`).join(' | ')} |`);
    console.log(`|---|${gaps.map(() => '---').join('|')}|`);
    for (const ratio of ratios) {
      const cells = gaps.map((gap) => {
        const t = tally(mine, ratio, gap);
        return `${t.hit}/${t.planted} · ${t.wrong} · ${t.cleanFlagged}/${t.clean}${t.falsePositives.length > 0 ? ` (${t.falsePositives.join(', ')})` : ''}`;
      });
      console.log(`| ${ratio} | ${cells.join(' | ')} |`);
    }
  }
}
