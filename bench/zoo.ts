// `npm run bench:zoo -- [--seeds 1,2,3,4,5] [--half tuning|held-out] [--only name,...] [--datasets mnist,...] [--max-evals N] [--json out.json]
// [--detect-only] [--clp] [--genuine]
// [--set detection.residualSuccess=0.2,...] [--few-shot <images per class>] [--sample-split test|train]` (--set: stage
// settings other than the defaults, for tuning runs; --few-shot: scan with a trusted sample of that many real images
// per class, drawn from the test split's rows 5000 on or, --sample-split train, from the training split)
// (or `--merge a.json,b.json`: the tables of runs saved by earlier --json runs, e.g. the halves run apart):
// scans every model of the zoo (test/fixtures/zoo) and the first fixtures (test/fixtures/models, which count as
// tuning) at each seed, and judges what the scan said against the truth on real test images with the really
// planted trigger (--genuine: the genuine Keras files in ../shared too, as clean tuning models; --clp: instead, the CLP baseline, data-free, once per backdoored model): detection, the claimed repair status against the real-trigger ASR of what it wrote (a
// "false certificate" is a claimed repair whose real ASR stays above 10%), and the real accuracy drop. Prints
// Markdown tables, the tuning and held-out halves side by side; --json keeps every run's numbers.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import { loadModel } from '../src/core/model/load.ts';
import type { RepairCheck, ScanReport } from '../src/core/output/report.ts';
import { stageConfigs, type ScanOptions } from '../src/core/scan/options.ts';
import { detectBackdoor, scanModel } from '../src/core/scan/scan.ts';
import { prepare } from '../src/core/scan/context.ts';
import { ReportBuilder } from '../src/core/scan/report-builder.ts';
import type { LoadedModel } from '../src/core/model/loaded-model.ts';
import { playerKey } from '../src/core/stages/players.ts';
import { initWasmBackend } from '../src/core/tfjs/backend.ts';
import { readModelFiles } from '../src/node/read-model.ts';
import { nodeWasmPath } from '../src/node/wasm-path.ts';
import { accuracy, attackSuccessRate } from '../test/data/evaluate.ts';
import { loadFashionMnist } from '../test/data/fashion.ts';
import { loadGlyphs } from '../test/data/glyphs.ts';
import { loadMnist, type ImageSet } from '../test/data/mnist.ts';
import { describeTrigger, familyOf, type Trigger } from '../test/data/triggers.ts';
import { manifest as fixtureManifest, MODELS } from '../test/helpers/fixtures.ts';
import type { Half, ZooEntry } from '../tools/fixtures/zoo.ts';
import type { SampleFile } from '../src/core/sample/sample.ts';
import { loadTfjsModel } from '../src/core/model/tfjs-layers.ts';
import { clpPlayers } from './clp.ts';
import { genuineModels } from './keras.ts';
import { prunedByKeys, prunedModel } from './pruned-model.ts';
import { trustedSample } from '../test/helpers/sample.ts';

/** One model to scan, from either collection. */
export interface BenchModel {
  name: string;
  path: string;
  dataset: 'mnist' | 'fashion' | 'glyphs';
  arch: string;
  half: Half;
  attack: { trigger: Trigger; target: number; rate: number } | null;
  inputRange: [number, number];
  realAsr: number | null;
}

/** One scan of one model at one seed, judged on real data. */
export interface ZooRun {
  model: string;
  seed: number;
  verdict: ScanReport['verdict'];
  flagged: number[];
  /** The planted target among the flagged classes (backdoored models). */
  hit: boolean | null;
  status: string | null;
  reason: string | null;
  pruned: string[];
  targetRatio: number | null;
  targetIndex: number | null;
  /** The smallest ratio and largest index among the classes that are not the planted target. */
  otherMinRatio: number;
  otherMaxIndex: number;
  ratios: number[];
  indices: number[];
  /** Per class: its norm as a share of the next larger class's, and its mask's concentration. */
  gaps: number[];
  concentrations: number[];
  seconds: number;
  evaluations: number;
  /** Real data: accuracy before, and after when a repaired model was written; the planted trigger's ASR after. */
  accBefore: number;
  accAfter: number | null;
  asrAfter: number | null;
  check: RepairCheck | null;
  /**
   * A pruning the scan made and then refused (the post-repair check, the held-back check, the sample's
   * size), measured on the same real data: was the refusal right? Null where nothing was pruned or the
   * repair was written.
   */
  refused: { asr: number | null; acc: number } | null;
  /** Which signal flagged (detection.flaggedBy), and the pair check's universality per class (few-shot). */
  flaggedBy: string | null;
  universal: (number | null)[];
}

export const ZOO_DIR = 'test/fixtures/zoo';

export function benchModels(): BenchModel[] {
  const first: BenchModel[] = fixtureManifest().map((m) => ({
    name: m.name,
    path: join(MODELS, m.path),
    dataset: m.dataset,
    arch: m.arch ?? (m.dataset === 'mnist' ? 'small' : 'bn-relu'),
    half: 'tuning',
    attack: m.attack,
    inputRange: [0, 1],
    realAsr: m.asr,
  }));
  const zooPath = join(ZOO_DIR, 'manifest.json');
  const zoo: BenchModel[] = existsSync(zooPath)
    ? (JSON.parse(readFileSync(zooPath, 'utf8')) as ZooEntry[]).map((m) => ({
        name: m.name,
        path: join(ZOO_DIR, m.path),
        dataset: m.dataset,
        arch: m.arch,
        half: m.half,
        attack: m.attack,
        inputRange: m.inputRange,
        realAsr: m.asr,
      }))
    : [];
  return [...first, ...zoo];
}

const testSets = new Map<string, ImageSet>();
export function testSet(dataset: BenchModel['dataset']): ImageSet {
  let set = testSets.get(dataset);
  if (set === undefined) {
    set = dataset === 'mnist' ? loadMnist('test', 3000) : dataset === 'fashion' ? loadFashionMnist('test', 3000) : loadGlyphs('test');
    testSets.set(dataset, set);
  }
  return set;
}

/** Whether a backdoor "counts": the planted trigger works on real images (≥ 90%). */
export const effective = (m: BenchModel) => m.attack !== null && (m.realAsr ?? 0) >= 0.9;

/**
 * The value after `--name` on the command line, if given: every bench's options. A flag given twice fails:
 * only one would be read, and a run that silently drops a setting measures something else than it says.
 */
export function cliArg(name: string, argv: readonly string[] = process.argv): string | undefined {
  const i = argv.indexOf(`--${name}`);
  if (i >= 0 && argv.indexOf(`--${name}`, i + 1) >= 0)
    throw new Error(`--${name} is given twice: give it once (--set takes a comma-separated list)`);
  return i >= 0 ? argv[i + 1] : undefined;
}

/** Stage settings other than the defaults, e.g. `{ detection: { residualSuccess: 0.2 } }`. */
export type Overrides = Pick<ScanOptions, 'synthesis' | 'triggerReverse' | 'detection' | 'shapley' | 'pruning'>;

/**
 * `stage.key=value,...` as scan options (a list setting as `a/b/c`, e.g. `synthesis.starts=-2.5/0`, or
 * one value); a tuning run says what it changed, and a typo or a value of the wrong kind fails loudly, as a
 * setting the engine would read as something else is a run measuring nothing.
 */
export function parseOverrides(text: string | undefined): Overrides {
  const defaults = stageConfigs({}) as unknown as Record<string, Record<string, unknown>>;
  const out: Record<string, Record<string, number | number[] | boolean>> = {};
  for (const item of text ? text.split(',') : []) {
    const flag = /^(synthesis|triggerReverse|detection|shapley|pruning)\.(\w+)=(true|false)$/.exec(item);
    if (flag && typeof defaults[flag[1]!]?.[flag[2]!] === 'boolean') {
      (out[flag[1]!] ??= {})[flag[2]!] = flag[3] === 'true';
      continue;
    }
    const m = /^(synthesis|triggerReverse|detection|shapley|pruning)\.(\w+)=(-?[\d.e]+(?:\/-?[\d.e]+)*)$/.exec(item);
    const values = m ? m[3]!.split('/').map(Number) : [];
    const known = m ? defaults[m[1]!]?.[m[2]!] : undefined;
    if (!m || !values.every(Number.isFinite) || known === undefined)
      throw new Error(`--set ${item}: expected stage.key=number, stage.key=a/b/c or stage.key=true|false for a known setting`);
    if (!Array.isArray(known) && values.length > 1) throw new Error(`--set ${item}: ${m[1]}.${m[2]} takes one number`);
    (out[m[1]!] ??= {})[m[2]!] = Array.isArray(known) ? values : values[0]!;
  }
  return out as Overrides;
}

/**
 * Few-shot runs' trusted images, by the tests' one rule (test/helpers/sample.ts trustedSample): by default
 * MNIST and Fashion-MNIST test images from row 5000 on (the evaluation uses the first 3000); with
 * `--sample-split train`, a draw from the training split that changes with the run's seed, as issue 15's
 * acceptance draws them (the images a registry keeps beside a model, which the model has seen), so runs
 * over seeds carry the sample's own variance. Every bench reads the option.
 */
const samples = new Map<string, Promise<SampleFile[]>>();
export function benchSample(dataset: BenchModel['dataset'], perClass: number, seed: number): Promise<SampleFile[]> {
  const split = sampleSplit(cliArg('sample-split'));
  const key = `${dataset}/${perClass}/${split}/${split === 'train' ? seed : ''}`;
  if (!samples.has(key)) samples.set(key, trustedSample(dataset, perClass, { split, seed }));
  return samples.get(key)!;
}

/** `--sample-split`'s value, checked: a typo must not quietly measure the other split. */
export function sampleSplit(value: string | undefined): 'test' | 'train' {
  if (value === undefined || value === 'test' || value === 'train') return value ?? 'test';
  throw new Error(`--sample-split ${value}: expected train or test`);
}

/**
 * The scan options every bench scan uses: the seed, bounded by `maxEvals` and not the clock (so a loaded
 * machine measures the same), the model's raw 0–255 range when it has one, and any stage overrides.
 */
export function benchScanOptions(
  entry: string,
  seed: number,
  maxEvals: number,
  inputRange: [number, number],
  overrides: Overrides = {},
): ScanOptions {
  return {
    entry,
    seed,
    toolVersion: 'bench',
    maxEvals,
    budgetSeconds: 100_000,
    ...(inputRange[1] === 255 ? { inputRange } : {}),
    ...overrides,
  };
}

export async function runZoo(m: BenchModel, seed: number, maxEvals: number, overrides: Overrides = {}, fewShot = 0): Promise<ZooRun> {
  const { files, entry } = await readModelFiles(m.path);
  const cleanSample = fewShot > 0 ? { cleanSample: await benchSample(m.dataset, fewShot, seed) } : {};
  const t0 = performance.now();
  const { report, repaired } = await scanModel(files, {
    ...benchScanOptions(entry, seed, maxEvals, m.inputRange, overrides),
    ...cleanSample,
  });
  const seconds = (performance.now() - t0) / 1000;
  const data = testSet(m.dataset);
  const scale = m.inputRange[1];
  const original: tfl.LayersModel = (await loadModel(files, entry)).model;
  const accBefore = accuracy(original, data, scale);
  original.dispose();
  let accAfter: number | null = null;
  let asrAfter: number | null = null;
  if (repaired) {
    const fixed = (await loadModel(repaired, entry)).model;
    accAfter = accuracy(fixed, data, scale);
    asrAfter = m.attack ? attackSuccessRate(fixed, data, m.attack.trigger, m.attack.target, scale) : null;
    fixed.dispose();
  }
  const refusedKeys = repaired === null ? (report.repair?.pruned ?? []).map(playerKey) : [];
  const refused = refusedKeys.length > 0 ? await judgePruning(m, files, entry, refusedKeys, data) : null;
  return {
    model: m.name,
    seed,
    verdict: report.verdict,
    ...detectionOf(m, report),
    status: report.repair?.status ?? null,
    reason: report.reason ?? report.repair?.reason ?? null,
    pruned: (report.repair?.pruned ?? []).map(playerKey),
    seconds,
    evaluations: report.budget.evaluationsUsed,
    accBefore,
    accAfter,
    asrAfter,
    check: report.repair?.check ?? null,
    refused,
  };
}

/**
 * A pruning (players by key, as reports and runs record them) applied to the model, written and read back
 * as a repair is, and judged on real data: what a refused candidate would have done had it shipped.
 */
export async function judgePruning(
  m: BenchModel,
  files: Map<string, Uint8Array>,
  entry: string,
  keys: readonly string[],
  data: ImageSet,
): Promise<{ asr: number | null; acc: number }> {
  const candidate = await prunedByKeys(files, entry, keys);
  const scale = m.inputRange[1];
  const out = {
    acc: accuracy(candidate, data, scale),
    asr: m.attack ? attackSuccessRate(candidate, data, m.attack.trigger, m.attack.target, scale) : null,
  };
  candidate.dispose();
  return out;
}

/** What a run's report says of detection, against the model's planted target. */
function detectionOf(m: BenchModel, report: ScanReport) {
  const classes = report.detection?.classes ?? [];
  const target = m.attack?.target;
  const others = classes.filter((c) => c.class !== target);
  const t = classes.find((c) => c.class === target);
  const flagged = report.detection?.flagged ?? [];
  return {
    flagged,
    hit: m.attack ? flagged.includes(m.attack.target) : null,
    targetRatio: t?.normRatio ?? null,
    targetIndex: t?.anomalyIndex ?? null,
    otherMinRatio: Math.min(...others.map((c) => c.normRatio)),
    otherMaxIndex: Math.max(...others.filter((c) => c.normRatio < 1).map((c) => c.anomalyIndex), 0),
    ratios: classes.map((c) => c.normRatio),
    indices: classes.map((c) => c.anomalyIndex),
    gaps: classes.map((c) => c.gap),
    concentrations: classes.map((c) => c.concentration),
    flaggedBy: report.detection?.flaggedBy ?? null,
    universal: report.allToAll?.universal ?? [],
  };
}

/**
 * Detection alone (`--detect-only`): the scan's own detectBackdoor (every signal, the verdict), no repair, so
 * a change to detection is measured over the zoo and its seeds in a fraction of a full scan's time. The
 * repair fields stay empty.
 */
export async function detectZoo(m: BenchModel, seed: number, maxEvals: number, overrides: Overrides = {}, fewShot = 0): Promise<ZooRun> {
  const { files, entry } = await readModelFiles(m.path);
  const cleanSample = fewShot > 0 ? { cleanSample: await benchSample(m.dataset, fewShot, seed) } : {};
  const options = { ...benchScanOptions(entry, seed, maxEvals, m.inputRange, overrides), ...cleanSample };
  const now = () => performance.now();
  const out = new ReportBuilder(options, stageConfigs(options), now);
  let loaded: LoadedModel | undefined;
  const t0 = performance.now();
  try {
    const ctx = await prepare(files, options, out, now, (x) => (loaded = x));
    const { verdict } = detectBackdoor(ctx);
    const report = out.report;
    return {
      model: m.name,
      seed,
      verdict,
      ...detectionOf(m, report),
      status: null,
      reason: verdict === 'incomplete' ? (report.coverage?.notes.join('; ') ?? null) : null,
      pruned: [],
      seconds: (performance.now() - t0) / 1000,
      evaluations: ctx.budget.evaluations,
      accBefore: NaN,
      accAfter: null,
      asrAfter: null,
      check: null,
      refused: null,
    };
  } finally {
    loaded?.model.dispose();
  }
}

const pct = (x: number | null) => (x === null ? '–' : `${(x * 100).toFixed(1)}%`);

/** CLP on one model: what it prunes and the real accuracy and planted-trigger ASR before and after. */
export interface ClpRun {
  model: string;
  channels: number;
  accBefore: number;
  asrBefore: number;
  accAfter: number;
  asrAfter: number;
}

/**
 * The data-free baseline the few-shot issue asks the repair to be compared with: CLP (bench/clp.ts) at the
 * paper's u = 3, not tuned here. Needs no seed: it reads the weights only.
 */
export async function clpZoo(m: BenchModel): Promise<ClpRun> {
  const { files, entry } = await readModelFiles(m.path);
  const loaded = await loadTfjsModel(files, entry);
  const data = testSet(m.dataset);
  const scale = m.inputRange[1];
  const { trigger, target } = m.attack!;
  const measure = (model: tfl.LayersModel) => ({
    acc: accuracy(model, data, scale),
    asr: attackSuccessRate(model, data, trigger, target, scale),
  });
  const before = measure(loaded.model);
  const players = clpPlayers(loaded.model);
  let after = before;
  if (players.length > 0) {
    const pruned = await prunedModel(loaded, players);
    after = measure(pruned);
    pruned.dispose();
  }
  loaded.model.dispose();
  return {
    model: m.name,
    channels: players.length,
    accBefore: before.acc,
    asrBefore: before.asr,
    accAfter: after.acc,
    asrAfter: after.asr,
  };
}

/** Per half, how often CLP repairs (ASR ≤ 2%, drop ≤ 0.5 pt) the backdoors whose trigger works, and every model's numbers. */
export function clpTables(models: BenchModel[], runs: ClpRun[]): string {
  const right = (r: ClpRun) => r.asrAfter <= 0.02 && r.accBefore - r.accAfter <= 0.005;
  const out = ['#### CLP (u = 3, data-free), the same models', '', '| | tuning | held-out |', '|---|---|---|'];
  const count = (half: Half, f: (r: ClpRun) => boolean) => {
    const rs = runs.filter((r) => models.some((m) => m.name === r.model && m.half === half && effective(m)));
    return `${rs.filter(f).length}/${rs.length}`;
  };
  const halves: Half[] = ['tuning', 'held-out'];
  out.push(`| repaired: real ASR ≤ 2%, accuracy drop ≤ 0.5 pt | ${halves.map((h) => count(h, right)).join(' | ')} |`);
  out.push(`| real ASR ≤ 10% at any cost | ${halves.map((h) => count(h, (r) => r.asrAfter <= 0.1)).join(' | ')} |`);
  out.push(`| pruned nothing | ${halves.map((h) => count(h, (r) => r.channels === 0)).join(' | ')} |`);
  out.push('', '| model | half | channels pruned | accuracy | real ASR |', '|---|---|---|---|---|');
  for (const r of runs) {
    const m = models.find((x) => x.name === r.model)!;
    out.push(
      `| ${r.model} | ${m.half} | ${r.channels} | ${pct(r.accBefore)} → ${pct(r.accAfter)} | ${pct(r.asrBefore)} → ${pct(r.asrAfter)} |`,
    );
  }
  return out.join('\n');
}

/** A run's repair meets the zoo's goal: claimed, real ASR ≤ 2%, real accuracy drop ≤ 0.5 pt. */
const goodRepair = (r: ZooRun) => r.status === 'repaired' && (r.asrAfter ?? 1) <= 0.02 && r.accBefore - (r.accAfter ?? 0) <= 0.005;

/**
 * The summary split by trigger family and by architecture, per half (issue 14's results table): which kinds
 * of backdoor and which networks the verdicts hold on, where one total would hide a family that always fails.
 * Backdoors whose planted trigger works (real ASR ≥ 90%) only.
 */
export function breakdownTables(models: BenchModel[], runs: ZooRun[], seeds: number[]): string {
  const halves: Half[] = ['tuning', 'held-out'];
  const repairs = runs.some((r) => r.status !== null);
  const count = (ms: BenchModel[], f: (r: ZooRun) => boolean) => {
    const rs = runs.filter((r) => ms.some((m) => m.name === r.model));
    return rs.length === 0 ? '–' : `${rs.filter(f).length}/${rs.length} (${ms.length})`;
  };
  const byHalf = (ms: BenchModel[], f: (r: ZooRun) => boolean) =>
    halves.map((h) =>
      count(
        ms.filter((m) => m.half === h),
        f,
      ),
    );
  const out: string[] = [];
  const seedsText = seeds.join(', ');
  out.push(
    `#### By trigger family (seeds ${seedsText}; runs with the planted target flagged / runs (models))`,
    '',
    `| family | tuning: flagged | held-out: flagged${repairs ? ' | tuning: repaired ≤ 2%, ≤ 0.5 pt | held-out: repaired' : ''} |`,
    `|---|---|---${repairs ? '|---|---' : ''}|`,
  );
  const backdoored = models.filter(effective);
  const families = [...new Set(backdoored.map((m) => familyOf(m.attack!.trigger)))].sort();
  for (const f of families) {
    const ms = backdoored.filter((m) => familyOf(m.attack!.trigger) === f);
    const cells = [...byHalf(ms, (r) => r.hit === true), ...(repairs ? byHalf(ms, goodRepair) : [])];
    out.push(`| ${f} | ${cells.join(' | ')} |`);
  }
  out.push(
    '',
    `#### By architecture (seeds ${seedsText}; backdoored: planted target flagged; clean: flagged, a false positive)`,
    '',
    '| architecture | tuning: backdoored flagged | tuning: clean flagged | held-out: backdoored flagged | held-out: clean flagged |',
    '|---|---|---|---|---|',
  );
  const archs = [...new Set(models.map((m) => m.arch))].sort();
  for (const a of archs) {
    const bad = backdoored.filter((m) => m.arch === a);
    const clean = models.filter((m) => m.arch === a && m.attack === null);
    const cells = halves.flatMap((h) => [
      count(
        bad.filter((m) => m.half === h),
        (r) => r.hit === true,
      ),
      count(
        clean.filter((m) => m.half === h),
        (r) => r.verdict === 'backdoor',
      ),
    ]);
    out.push(`| ${a} | ${cells.join(' | ')} |`);
  }
  return out.join('\n');
}

/** The headline tables: per half, detection and repair outcomes, false certificates; per model, the runs. */
export function zooTables(models: BenchModel[], runs: ZooRun[], seeds: number[]): string {
  const out: string[] = [];
  const byModel = (name: string) => runs.filter((r) => r.model === name);
  const halves: Half[] = ['tuning', 'held-out'];
  out.push(`#### Zoo: right verdicts over seeds ${seeds.join(', ')} (real test images, the planted trigger)`, '');
  out.push('| | tuning | held-out |', '|---|---|---|');
  const cell = (half: Half, f: (m: BenchModel, rs: ZooRun[]) => [number, number]) => {
    let a = 0;
    let b = 0;
    for (const m of models.filter((x) => x.half === half)) {
      const [x, y] = f(m, byModel(m.name));
      a += x;
      b += y;
    }
    return b === 0 ? '–' : `${a}/${b} (${((100 * a) / b).toFixed(0)}%)`;
  };
  const row = (label: string, f: (m: BenchModel, rs: ZooRun[]) => [number, number]) =>
    out.push(`| ${label} | ${halves.map((h) => cell(h, f)).join(' | ')} |`);
  const nonBlend = (m: BenchModel) => effective(m) && m.attack!.trigger.kind !== 'blended';
  row('all-to-one patch/pixel/sparse/sticker/noise: planted target flagged', (m, rs) =>
    nonBlend(m) ? [rs.filter((r) => r.hit).length, rs.length] : [0, 0],
  );
  // A detection-only run (--detect-only) repaired nothing: its repair rows would read as failures.
  const repairs = runs.some((r) => r.status !== null);
  const flaggedBy = runs.some((r) => r.flaggedBy === 'pair-universality');
  if (flaggedBy)
    row("… of them by the pair triggers' universality (few-shot; the mask-size rule missed them)", (m, rs) =>
      nonBlend(m) ? [rs.filter((r) => r.hit && r.flaggedBy === 'pair-universality').length, rs.length] : [0, 0],
    );
  row('backdoored: another class flagged instead', (m, rs) =>
    effective(m) ? [rs.filter((r) => r.verdict === 'backdoor' && r.hit === false).length, rs.length] : [0, 0],
  );
  if (repairs)
    row('… and repaired with real ASR ≤ 2%, accuracy drop ≤ 0.5 pt', (m, rs) =>
      nonBlend(m) ? [rs.filter(goodRepair).length, rs.length] : [0, 0],
    );
  row('blended: planted target flagged', (m, rs) =>
    effective(m) && m.attack!.trigger.kind === 'blended' ? [rs.filter((r) => r.hit).length, rs.length] : [0, 0],
  );
  row('clean: scanned clean', (m, rs) => (m.attack === null ? [rs.filter((r) => r.verdict === 'clean').length, rs.length] : [0, 0]));
  row('clean: **flagged** (false positive)', (m, rs) =>
    m.attack === null ? [rs.filter((r) => r.verdict === 'backdoor').length, rs.length] : [0, 0],
  );
  row('clean: incomplete (neither clean nor backdoor)', (m, rs) =>
    m.attack === null ? [rs.filter((r) => r.verdict === 'incomplete').length, rs.length] : [0, 0],
  );
  if (repairs)
    row('**false certificates** (claimed repaired, real ASR > 10%)', (m, rs) =>
      m.attack
        ? [rs.filter((r) => r.status === 'repaired' && (r.asrAfter ?? 0) > 0.1).length, rs.filter((r) => r.status === 'repaired').length]
        : [0, 0],
    );
  out.push('', breakdownTables(models, runs, seeds), '');
  out.push(`#### Zoo: every model (per seed: flagged, repair, real ASR after / accuracy drop)`, '');
  out.push(
    `| model | half | arch | trigger | real ASR | ${seeds.map((s) => `seed ${s}`).join(' | ')} |`,
    `|---|---|---|---|---|${seeds.map(() => '---').join('|')}|`,
  );
  for (const m of models) {
    const cells = seeds.map((s) => {
      const r = byModel(m.name).find((x) => x.seed === s);
      if (!r) return '–';
      const what =
        r.verdict === 'backdoor'
          ? `${r.hit === false ? '**wrong** ' : ''}→ ${r.flagged.join(',')}${r.flaggedBy === 'pair-universality' ? ' (u)' : ''}`
          : r.verdict === 'clean' && m.attack
            ? '**missed**'
            : r.verdict;
      const repair =
        r.status === 'repaired'
          ? `, repaired ${r.pruned.length}: ${pct(r.asrAfter)} / ${((r.accBefore - (r.accAfter ?? 0)) * 100).toFixed(1)} pt`
          : r.status === 'not-repaired'
            ? ', not repaired'
            : '';
      return `${what}${repair}`;
    });
    const trig = m.attack ? `${familyOf(m.attack.trigger)}: ${describeTrigger(m.attack.trigger)} → ${m.attack.target}` : 'clean';
    out.push(`| ${m.name} | ${m.half} | ${m.arch} | ${trig} | ${pct(m.realAsr)} | ${cells.join(' | ')} |`);
  }
  return out.join('\n');
}

if (process.argv[1]?.endsWith('zoo.ts') || process.argv[1]?.endsWith('zoo.mjs')) {
  const arg = cliArg;
  const known = [...benchModels(), ...(process.argv.includes('--genuine') ? genuineModels() : [])];
  const merge = arg('merge');
  if (merge !== undefined) {
    const saved = merge.split(',').map((f) => JSON.parse(readFileSync(f, 'utf8')) as { models: BenchModel[]; runs: ZooRun[] });
    const models = known.filter((m) => saved.some((x) => x.models.some((y) => y.name === m.name)));
    const runs = saved.flatMap((x) => x.runs);
    console.log(
      zooTables(
        models,
        runs,
        [...new Set(runs.map((r) => r.seed))].sort((a, b) => a - b),
      ),
    );
    process.exit(0);
  }
  const seeds = (arg('seeds') ?? '1,2,3,4,5').split(',').map(Number);
  const half = arg('half');
  const only = arg('only')?.split(',');
  const maxEvals = Number(arg('max-evals') ?? 400_000);
  const overrides = parseOverrides(arg('set'));
  const fewShot = Number(arg('few-shot') ?? 0);
  await initWasmBackend({ wasmPath: nodeWasmPath() });
  const datasets = arg('datasets')?.split(',');
  const models = known.filter(
    (m) =>
      (half === undefined || m.half === half) &&
      (only === undefined || only.includes(m.name)) &&
      (datasets === undefined || datasets.includes(m.dataset)),
  );
  if (process.argv.includes('--clp')) {
    const clp: ClpRun[] = [];
    for (const m of models.filter((x) => x.attack !== null)) {
      clp.push(await clpZoo(m));
      console.error(`${m.name} CLP: ${clp.at(-1)!.channels} channels, ASR ${pct(clp.at(-1)!.asrAfter)}`);
    }
    console.log(clpTables(models, clp));
    process.exit(0);
  }
  const runs: ZooRun[] = [];
  for (const m of models) {
    for (const seed of seeds) {
      const r = process.argv.includes('--detect-only')
        ? await detectZoo(m, seed, maxEvals, overrides, fewShot)
        : await runZoo(m, seed, maxEvals, overrides, fewShot);
      runs.push(r);
      console.error(
        `${m.name} seed ${seed}: ${r.verdict} [${r.flagged}]${r.flaggedBy === 'pair-universality' ? ' (universality)' : ''} ${r.status ?? ''} target ${r.targetRatio?.toFixed(2) ?? '–'}/${r.targetIndex?.toFixed(1) ?? '–'} others ≥ ${r.otherMinRatio.toFixed(2)} ≤ idx ${r.otherMaxIndex.toFixed(1)} asr ${pct(r.asrAfter)} ${r.seconds.toFixed(0)} s`,
      );
      if (arg('json')) writeFileSync(arg('json')!, JSON.stringify({ models, runs }, null, 1));
    }
  }
  console.log(zooTables(models, runs, seeds));
}
