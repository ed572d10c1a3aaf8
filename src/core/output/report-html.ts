import { ruleFor } from '../stages/detection/detect.ts';
import { playerKey, playerKind } from '../stages/players.ts';
import { toBase64 } from '../util/encoding.ts';
import { encodePng } from './png.ts';
import {
  shipOf,
  type Ship,
  type AllToAllRepairCheck,
  type ClassReport,
  type HeldBackCheck,
  type ScanReport,
  type ShapleyReport,
  type TriggerEvidence,
  type PlayerRef,
} from './report.ts';

const esc = (text: unknown): string => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const pct = (x: number | undefined): string => (x === undefined ? '–' : `${(x * 100).toFixed(1)}%`);
const num = (x: number, digits = 3): string => (Number.isFinite(x) ? x.toFixed(digits) : '–');

const VERDICT_COLOUR: Record<string, string> = {
  clean: '#1a7f37',
  backdoor: '#cf222e',
  incomplete: '#9a6700',
  error: '#cf222e',
  unsupported: '#6e7781',
};

const SHIP_WORDS: Record<Ship, string> = {
  original: 'yes, the scanned model (clean is no proof of absence: see Coverage)',
  repaired: 'the repaired model only (repaired/), never the upload, which still carries the backdoor',
  nothing: 'nothing: neither the upload nor any copy of it',
};

/**
 * A bar chart as inline SVG: one bar per item, a dashed threshold line, highlighted bars in red. Labels
 * turn upright when they are wider than a bar, so that neighbours never overlap; the chart scales down to
 * the page's width (a phone's) through its viewBox.
 */
function barChart(
  items: { label: string; value: number; highlight: boolean; title: string }[],
  opts: { threshold?: number; thresholdLabel?: string; height?: number; id: string; cap?: number },
): string {
  const plot = opts.height ?? 140;
  const bar = Math.max(4, Math.min(28, Math.floor(720 / Math.max(1, items.length))));
  const labelled = bar >= 11;
  const longest = Math.max(0, ...items.map((i) => i.label.length));
  const upright = labelled && longest * CHAR_WIDTH > bar - 2;
  const below = !labelled ? 6 : upright ? Math.ceil(longest * CHAR_WIDTH) + 10 : 20;
  const height = plot + below;
  const width = items.length * bar + 40;
  const base = plot - 6;
  // A cap keeps one huge bar from flattening the rest; a capped bar reaches the top and carries its value.
  const max = Math.min(opts.cap ?? Infinity, Math.max(1e-9, ...items.map((i) => i.value), opts.threshold ?? 0));
  const y = (v: number) => base - (v / max) * (base - 10);
  const label = (text: string, x: number) =>
    upright
      ? `<text x="${x}" y="${base + 4}" font-size="9" text-anchor="end" dominant-baseline="middle" transform="rotate(-90 ${x} ${base + 4})">${esc(text)}</text>`
      : `<text x="${x}" y="${base + 14}" font-size="9" text-anchor="middle">${esc(text)}</text>`;
  const bars = items
    .map((it, i) => {
      const capped = it.value > max;
      const top = y(Math.min(max, Math.max(0, it.value)));
      const x = 30 + i * bar;
      const value = num(it.value, 1);
      const over =
        capped && value.length * CHAR_WIDTH <= bar - 2
          ? `<text x="${x + (bar - 2) / 2}" y="${top + 9}" font-size="9" text-anchor="middle" fill="#fff">${esc(value)}</text>`
          : '';
      return `<g><title>${esc(it.title)}</title><rect x="${x}" y="${top.toFixed(1)}" width="${bar - 2}" height="${(base - top).toFixed(1)}" fill="${it.highlight ? '#cf222e' : '#0969da'}"/>${over}${labelled ? label(it.label, x + (bar - 2) / 2) : ''}</g>`;
    })
    .join('');
  const line =
    opts.threshold === undefined
      ? ''
      : `<line x1="28" x2="${width}" y1="${y(opts.threshold).toFixed(1)}" y2="${y(opts.threshold).toFixed(1)}" stroke="#9a6700" stroke-dasharray="4 3"/><text x="${width + 4}" y="${(y(opts.threshold) + 3).toFixed(1)}" font-size="10" fill="#9a6700">${esc(opts.thresholdLabel ?? '')}</text>`;
  return `<svg id="${esc(opts.id)}" class="chart" role="img" width="${width + 110}" height="${height}" viewBox="0 0 ${width + 110} ${height}" xmlns="http://www.w3.org/2000/svg"><line x1="28" x2="28" y1="8" y2="${base}" stroke="#8c959f"/><text x="24" y="14" font-size="9" text-anchor="end">${esc(num(max, 2))}</text>${bars}${line}</svg>`;
}

/** A 9 px label's width per character, generously: what decides whether labels must stand upright. */
const CHAR_WIDTH = 5.6;

/** A player in words, for people: "conv2 channel 5", "fc1 input position 4,4", "fc1 input position 4,4 channel 13". */
function playerWords(p: PlayerRef): string {
  const kind = playerKind(p);
  if (kind === 'channel') return `${p.layer} channel ${p.channel}`;
  return `${p.layer} input position ${p.position!.join(',')}${kind === 'cell' ? ` channel ${p.channel}` : ''}`;
}

/** What was pruned, counted by kind and named: "1 position pruned (fc1 input position 4,4)"; the demo prints it too. */
export function prunedWords(pruned: readonly PlayerRef[]): string {
  if (pruned.length === 0) return 'nothing pruned';
  const count = (n: number, one: string, many = `${one}s`) => (n === 0 ? [] : [`${n} ${n === 1 ? one : many}`]);
  const of = (kind: ReturnType<typeof playerKind>) => pruned.filter((p) => playerKind(p) === kind).length;
  const kinds = [
    ...count(of('channel'), 'channel'),
    ...count(of('position'), 'position'),
    ...count(of('cell'), "position's channel", "positions' channels"),
  ].join(' and ');
  const names = pruned.slice(0, 8).map(playerWords).join(', ');
  return `${kinds} pruned (${names}${pruned.length > 8 ? `, and ${pruned.length - 8} more` : ''})`;
}

const REPAIR_WORDS: Record<NonNullable<ScanReport['repair']>['status'], string> = {
  repaired: 'repaired: the post-repair check found the trigger gone',
  'not-repaired': 'not repaired',
  'not-needed': 'not needed: nothing was flagged',
};

function anomalySection(report: ScanReport): string {
  const d = report.detection;
  if (!d) return '';
  const { maxNormRatio, maxGap, maxTargetShare } = ruleFor(report.config.detection, report.mode === 'few-shot');
  const most = Math.max(1, Math.floor(maxTargetShare * d.classes.length));
  // Several starts: a class's size is a mean of shares of each start's median, not one trigger's L1 norm.
  const several = d.starts.length > 1;
  const sizeName = several ? 'size (mean share)' : 'trigger L1';
  const startsText = several
    ? ` The images were synthesized from ${esc(d.starts.length)} starts (backgrounds ${esc(d.starts.map((s) => num(s.background, 1)).join(', '))}), each with its own trigger search: what a model does with a trigger depends on the background. A class's size is the mean, over the starts, of its trigger's share of that start's median (medians ${esc(d.starts.map((s) => num(s.median, 1)).join(', '))}).`
    : '';
  const basesText = report.sample?.stages.includes('detection')
    ? " The triggers were reversed on the trusted sample's images (synthetic ones filling a class with too few), as Neural Cleanse reverses on clean real images."
    : '';
  const items = d.classes.map((c: ClassReport) => ({
    label: String(c.class),
    value: c.normRatio,
    highlight: c.flagged,
    title: `class ${c.class}: ${sizeName} ${num(c.comparableNorm, several ? 2 : 1)}, ${num(c.normRatio)} of the median, ${num(c.gap)} of the next larger${c.flagged ? ' — flagged' : ''}`,
  }));
  const rows = [...d.classes]
    .sort((a, b) => a.comparableNorm - b.comparableNorm || a.class - b.class)
    .map(
      (c) =>
        `<tr${c.flagged ? ' class="flagged"' : ''}><td>${esc(c.class)}</td><td>${esc(num(c.comparableNorm, several ? 2 : 1))}</td><td>${esc(num(c.normRatio, 2))}</td><td>${esc(num(c.gap, 2))}</td><td>${esc(num(c.anomalyIndex, 2))}</td><td>${esc(num(c.concentration, 2))}</td><td>${c.reached ? 'yes' : '<strong>no</strong>'}</td><td>${c.flagged ? '<strong>flagged</strong>' : '–'}</td></tr>`,
    )
    .join('');
  return `<section><h2>Trigger size of every class</h2><p>For each class, the smallest trigger (mask L1 norm) that sends images of the other classes to it, as a share of the median class's (dashed line: the flagging bound; the axis stops at twice the median, and a taller bar is cut there with its value on it). A backdoor's target is far easier to reach than any other class. A class is flagged when both rules hold: <strong>(1)</strong> its trigger is at most ${esc(maxNormRatio)} of the median's, and <strong>(2)</strong> at most ${esc(maxGap)} of the next larger class's. Several classes are flagged together, smallest first, when all meet (1) and the last meets (2); at most ${esc(most)} of ${esc(d.classes.length)}. Median ${esc(num(d.median, several ? 2 : 1))}, MAD ${esc(num(d.mad, several ? 2 : 1))}; Neural Cleanse's anomaly index is listed, not used.${startsText}${basesText}</p>${barChart(items, { threshold: maxNormRatio, thresholdLabel: `rule (1): ≤ ${maxNormRatio}`, id: 'trigger-size-chart', cap: 2 })}<details><summary>Every class, smallest trigger first</summary><div class="wide"><table><thead><tr><th>class</th><th>${sizeName}</th><th>of the median</th><th>of the next larger</th><th>anomaly index</th><th>compactness</th><th>success reached</th><th>flagged</th></tr></thead><tbody>${rows}</tbody></table></div></details></section>`;
}

/**
 * The all-to-all check: its score against the bound, the mapping, and a K×K heat map of the pair triggers'
 * sizes (each row shaded against its own median, as the mapping is chosen), the mapped pairs outlined.
 */
function allToAllSection(report: ScanReport): string {
  const a = report.allToAll;
  if (a === null) return '';
  if (!a.checked) return `<section id="all-to-all"><h2>All-to-all check: not run</h2><p>Not run: ${esc(a.reason ?? '')}.</p></section>`;
  const bound = report.config.allToAll.minScore;
  const K = a.norms.length;
  const head = Array.from({ length: K }, (_, t) => `<th>${t}</th>`).join('');
  const rows = a.norms
    .map((row, s) => {
      const finite = row.filter((v): v is number => v !== null).sort((x, y) => x - y);
      const mid = finite.length > 0 ? finite[Math.floor(finite.length / 2)]! : 1;
      const cells = row
        .map((v, t) => {
          if (t === s) return '<td></td>';
          // Darker is cheaper against the row's median: a mapping shows as one dark cell per row.
          const shade = v === null ? 0 : Math.max(0, Math.min(1, 1 - v / (2 * mid)));
          const style = `background:rgba(207,34,46,${shade.toFixed(2)})${a.mapping[s] === t ? ';outline:2px solid #1f2328' : ''}`;
          return `<td style="${style}" title="${esc(`${s} → ${t}: ${v === null ? 'never reached success' : num(v, 1)}`)}">${v === null ? '–' : esc(num(v, 0))}</td>`;
        })
        .join('');
      return `<tr><th>${s}</th>${cells}<td>${esc(pct(a.follows[s]))}</td></tr>`;
    })
    .join('');
  const universal = a.universal ?? [];
  const carryRow =
    universal.length === K
      ? `<tr id="universality"><th>carries into</th>${universal
          .map(
            (u, t) =>
              `<td${t === a.universalTarget ? ' style="outline:2px solid #1f2328;font-weight:bold"' : ''}>${esc(u === null ? '–' : pct(u))}</td>`,
          )
          .join('')}<td></td></tr>`
      : '';
  const verdict = a.flagged
    ? 'flagged'
    : a.universalTarget != null
      ? `class ${a.universalTarget} flagged (universal)`
      : a.reason === null
        ? 'nothing found'
        : 'cut short';
  const { minUniversal, universalRatio } = report.config.allToAll;
  const universalText =
    universal.length === K
      ? ` The last row is each class's universality: every pair trigger s → t stamped on the images of the classes that are neither s nor t, the share sent to t, its median over the sources. A planted all-to-one trigger works from any class; a clean model's pair trigger is fitted to its source. A class is flagged at ${pct(minUniversal)} or more and ${universalRatio}× the next class's${a.universalTarget != null ? `: class ${a.universalTarget} is, a backdoor target the mask sizes above did not single out` : ''}.`
      : '';
  return `<section id="all-to-all"><h2>All-to-all check: ${verdict}</h2><p>An all-to-all backdoor sends every class to a target of its own with one trigger, so no class is an outlier above. With the trusted sample (${esc(a.realPerSource.reduce((x, y) => x + y, 0))} real images as bases), a trigger was reverse-engineered for every source → target pair; the cheapest mapping over them (one target per source, outlined) was chosen, and each mapped pair's trigger stamped on the other classes' images. A clean model's pair trigger is fitted to its source and moves other classes nowhere; a planted all-to-all trigger sends them to their own mapped targets. Score ${esc(pct(a.score))} (the mean over sources of the median share that follows the mapping); flagged at ${esc(pct(bound))} or more.${esc(universalText)}${a.reason ? ` ${esc(a.reason)}.` : ''}</p><div class="wide"><table id="pair-heat-map"><thead><tr><th>source \\ target</th>${head}<th>follows</th></tr></thead><tbody>${rows}${carryRow}</tbody></table></div>${allToAllCheckText(a.repairCheck ?? null, bound)}</section>`;
}

/** The all-to-all repair's check in words: the pair check again on the pruned model, over held-back images. */
function allToAllCheckText(c: AllToAllRepairCheck | null, bound: number): string {
  if (c === null) return '';
  const result = c.passed ? 'passed: no mapping is left' : `failed: ${c.reason ?? ''}`;
  const score =
    c.mapping.length > 0
      ? ` Score ${pct(c.score)} against the bound ${pct(bound)} (mapping found ${c.mapping.map((t, s) => `${s}→${t}`).join(' ')}).`
      : '';
  const power =
    c.original != null
      ? ` The same search on the original model, same images and starts, scored ${pct(c.original)}: a check counts only where it finds the backdoor there.`
      : '';
  return `<h3 id="all-to-all-check">Check of the repair: ${esc(result)}</h3><p>The same pair check, from fresh starts, on the pruned model over ${esc(c.images)} held-back real images the repair never saw.${esc(score)}${esc(power)} Held-back accuracy ${esc(pct(c.accuracyBefore))} before, ${esc(pct(c.accuracyAfter))} after (95% interval ${esc(pct(c.intervalAfter[0]))}–${esc(pct(c.intervalAfter[1]))}).</p>`;
}

function shapleySection(report: ScanReport): string {
  if (report.shapley.length === 0) return '';
  const pruned = new Set((report.repair?.pruned ?? []).map(playerKey));
  const charts = report.shapley
    .map((s: ShapleyReport) => {
      const top = s.players.slice(0, 40);
      const items = top.map((p) => ({
        label: playerKey(p),
        value: p.value,
        highlight: pruned.has(playerKey(p)),
        title: `${playerWords(p)}: ${num(p.value, 4)}${pruned.has(playerKey(p)) ? ' — pruned' : ''}`,
      }));
      const game =
        s.target === null
          ? `All-to-all: every mapped pair (${(s.pairs ?? []).map(([a, b]) => `${a}→${b}`).join(' ')})`
          : `Target ${s.target}`;
      const cells = s.refines ? `, the channels of ${s.refines.map(playerKey).join(', ')}` : '';
      return `<h3>${esc(game)}, round ${esc(s.round)}${esc(cells)}</h3><p>${esc(s.permutations)} permutations, ${esc(Math.round(s.evaluations))} evaluations, ${s.converged ? 'converged' : `stopped by ${esc(s.stoppedBy)}`}. Top ${top.length} of ${s.players.length} players (layer:channel, layer@row,column for a position of the map a Flatten feeds into the layer, layer@row,column:channel for one channel there); pruned in red.</p>${barChart(items, { id: `shapley-${s.target ?? 'all-to-all'}-${s.round}${s.refines ? '-cells' : ''}` })}`;
    })
    .join('');
  return `<section><h2>Shapley values of the players</h2>${charts}</section>`;
}

async function pngDataUrl(width: number, height: number, channels: 1 | 3, pixels: Float32Array): Promise<string> {
  return `data:image/png;base64,${toBase64(await encodePng(width, height, channels, pixels))}`;
}

async function triggerSection(evidence: readonly TriggerEvidence[]): Promise<string> {
  if (evidence.length === 0) return '';
  const figures: string[] = [];
  for (const e of evidence) {
    const [h, w, c] = e.shape;
    const ch = c === 1 ? 1 : 3;
    const rgb = (x: Float32Array) => (c === 1 || c === 3 ? x : x.filter((_, i) => i % c < 3));
    const img = async (alt: string, pixels: Float32Array, channels: 1 | 3) =>
      `<figure><img alt="${esc(alt)}" width="${w * 4}" height="${h * 4}" src="${await pngDataUrl(w, h, channels, pixels)}"><figcaption>${esc(alt)}</figcaption></figure>`;
    figures.push(
      `<h3>${e.flagged ? `Target ${esc(e.target)}${e.source === null ? '' : `: the pair trigger from class ${esc(e.source)} that carries furthest`}` : `Class ${esc(e.target)}, the smallest trigger (not flagged)`}</h3><div class="row">${await img('mask', e.mask, 1)}${await img('pattern', rgb(e.pattern), ch)}${await img('synthesized input', rgb(e.input), ch)}${await img('with the trigger', rgb(e.stamped), ch)}</div>`,
    );
  }
  const flagged = evidence.some((e) => e.flagged);
  return `<section id="trigger"><h2>${flagged ? 'Reverse-engineered trigger' : 'The closest call'}</h2><p>${flagged ? '' : 'Nothing was flagged; this is the class whose reverse-engineered trigger was smallest, for comparison with what a planted trigger looks like. '}The mask (where the trigger sits), its pattern, and the trigger stamped on an input the scanner synthesized from the model.</p>${figures.join('')}</section>`;
}

function metricsSection(report: ScanReport): string {
  const v = report.verification;
  if (!v) return '';
  const row = (name: string, b: number | undefined, a: number | undefined) =>
    `<tr><td>${esc(name)}</td><td>${pct(b)}</td><td>${pct(a)}</td></tr>`;
  const targets = Object.keys(v.before.reversedAsr);
  return `<section><h2>Before and after</h2><p>On ${esc(v.images)} held-back synthesized images.</p><div class="wide"><table><thead><tr><th>metric</th><th>before</th><th>after</th></tr></thead><tbody>${targets.map((t) => row(`reversed-trigger success, target ${t}`, v.before.reversedAsr[t], v.after?.reversedAsr[t])).join('')}${row('agreement with the original', v.before.agreement, v.after?.agreement)}${row('synthetic accuracy', v.before.syntheticAccuracy, v.after?.syntheticAccuracy)}</tbody></table></div></section>`;
}

/** The post-repair check's evidence: why the repair was (or was not) allowed to count. */
function checkSection(report: ScanReport): string {
  const c = report.repair?.check;
  if (!c) return '';
  const rows = c.targets
    .map(
      (t) =>
        `<tr><td>${esc(t.target)}</td><td>${esc(num(t.residualNorm, 1))}</td><td>${esc(num(t.ofSmallestClean, 2))}</td><td>${pct(t.oldTriggerAsr)}</td><td>${t.removed ? 'yes' : `<strong>no</strong> — ${esc(t.reason ?? '')}`}</td></tr>`,
    )
    .join('');
  const baseline = c.baseline.map((b) => `class ${esc(b.class)}: ${esc(num(b.norm, 1))}`).join(', ');
  return `<section id="check"><h2>Post-repair check: ${!c.passed ? 'failed' : report.repair?.status === 'repaired' ? 'passed' : 'passed, yet not enough to certify the repair (see Repair)'}</h2>${heldBackPart(c.heldBack)}<p>On the written model and ${esc(c.images)} fresh synthesized images the repair never saw (${pct(c.synthesisConfidence)} of them confidently their class), each flagged target's smallest trigger reaching ${pct(c.success)} success was searched for again from fresh starts, beside the clean classes with the smallest triggers (${baseline}). A target counts as repaired only if its trigger is no smaller than ${esc(report.config.detection.residualOfSmallest)} of the smallest clean class's.</p><div class="wide"><table><thead><tr><th>target</th><th>residual trigger (L1)</th><th>of the smallest clean class's</th><th>old reversed trigger's success</th><th>removed</th></tr></thead><tbody>${rows}</tbody></table></div></section>`;
}

/** Few-shot mode's part of the check: the same search on real images held back from the repair. */
function heldBackPart(h: HeldBackCheck | null): string {
  if (h === null) return '';
  const verdicts = h.targets
    .map(
      (t) =>
        `target ${esc(t.target)}: ${t.removed ? 'removed' : `<strong>not removed</strong> — ${esc(t.reason ?? '')}`} (residual ${esc(num(t.residualNorm, 1))}, ${esc(num(t.ofSmallestClean, 2))} of the smallest clean class's)`,
    )
    .join('; ');
  const region = h.region
    .map(
      (r) =>
        `target ${esc(r.target)}: ${r.cleared ? 'cleared' : `<strong>not cleared</strong> — ${esc(r.reason ?? '')}`} (${esc(r.pixels)} pixels; of ${esc(r.images)} images, ${esc(r.before)} sent to the target before pruning, ${esc(r.after)} after)`,
    )
    .join('; ');
  const second =
    region === ''
      ? ''
      : ` Where the residual trigger was still small, the region test asked whether a pattern confined to where the flagged trigger was found still sends held-back images to its target (a target passes if its region is cleared): ${region}.`;
  return `<p>On ${esc(h.images)} real images of the trusted sample held back from the repair: accuracy ${pct(h.accuracyBefore)} before, ${pct(h.accuracyAfter)} after (95% interval ${pct(h.intervalAfter[0])}–${pct(h.intervalAfter[1])}); the residual search there: ${verdicts}.${second}</p>`;
}

/** What the scan saw of the model's data: nothing (data-free), or a trusted sample and where it served. */
function modeText(report: ScanReport): string {
  const s = report.sample;
  if (report.mode === 'data-free' || s === null) return 'data-free: every image the scan used it synthesized from the model';
  return `few-shot: ${s.images} trusted images (${s.perClass.join('/')} per class; ${s.resized} resized, ${s.ignored} other files skipped; digest ${s.digest.slice(0, 16)}…), ${s.used} used by ${s.stages.filter((x) => x !== 'check').join(', ') || 'no stage'}, ${s.heldBack} held back for the final check`;
}

function budgetSection(report: ScanReport): string {
  const stages = report.budget.stages
    .map(
      (s) =>
        `<tr><td>${esc(s.name)}</td><td>${esc(num(report.timings.stages[s.name] ?? Number.NaN, 1))}</td><td>${esc(Math.round(s.evaluations))}</td><td>${esc(s.steps ?? '–')}</td><td>${esc(s.stoppedBy ?? '–')}</td></tr>`,
    )
    .join('');
  return `<section><h2>Time and evaluation budget</h2><p>${esc(num(report.timings.totalSeconds, 1))} s of a ${esc(report.config.budgetSeconds)} s budget; ${esc(Math.round(report.budget.evaluationsUsed))} evaluations${report.config.maxEvals !== null ? ` of ${esc(report.config.maxEvals)}` : ''}.</p><div class="wide"><table><thead><tr><th>stage</th><th>seconds</th><th>evaluations</th><th>steps</th><th>stopped by</th></tr></thead><tbody>${stages}</tbody></table></div></section>`;
}

/** Plain words for the reviewer: what the verdict means and what to do with the model now. */
function adviceBox(report: ScanReport): string {
  const targets = report.detection?.flagged.join(', ') ?? '';
  const byUniversality =
    report.detection?.flaggedBy === 'pair-universality'
      ? ' (found by how far the pair triggers carry into it, see the all-to-all check)'
      : report.detection?.flaggedBy === 'head-tendency'
        ? ' (found by the classifier head leaning to it from every other class, with a reversed trigger smaller than most)'
        : '';
  const sends = report.allToAll?.flagged
    ? `An all-to-all backdoor sends images carrying one trigger each to a class of its own (mapping ${esc(report.allToAll.mapping.map((t, s) => `${s}→${t}`).join(' '))}).`
    : `A backdoor sends images carrying a trigger to class ${esc(targets)}${esc(byUniversality)}.`;
  const ship = shipOf(report);
  const body =
    ship === 'original'
      ? `No class of this model has a trigger markedly smaller than the others', so the scan found no backdoor and the model may ship. Clean is not proof of absence: a trigger spread over the whole image, or one this scan's budget did not reach, can go unseen; the warnings above say where coverage fell short.`
      : ship === 'repaired'
        ? `${sends} <strong>Ship the repaired model (repaired/), never the upload</strong>: the upload still carries the backdoor. ${esc(prunedWords(report.repair?.pruned ?? []))}, and ${report.allToAll?.flagged ? 'the all-to-all check, run again on the pruned model over held-back images, found no mapping' : "the post-repair check found no trigger for the target smaller than the clean classes'"}. Check the repaired model's accuracy on your own test data before it replaces the old one.`
        : report.verdict === 'backdoor'
          ? `${sends} <strong>Ship nothing from this upload.</strong> The scan could not produce a repair it can stand behind (see Repair below). Retrain from data you trust${report.mode === 'few-shot' ? '' : ', or scan again with a trusted sample of real images (--clean-samples), which lets the scan check a repair on them'}.`
          : report.verdict === 'incomplete'
            ? `The scan did not cover every class, so it can vouch for nothing. <strong>Ship nothing on this report</strong>; scan again with a larger budget (--budget, --max-evals).`
            : `The scan could not run on this model. <strong>Ship nothing on this report</strong>; fix what the reason names and scan again.`;
  return `<div class="advice" id="advice"><h2>What this means, what to do</h2><p>${body}</p></div>`;
}

/** Coverage notes as warnings, which a green verdict does not hide. */
function warningsBox(report: ScanReport): string {
  const warnings = report.coverage?.notes ?? [];
  if (warnings.length === 0) return '';
  return `<div class="warn" id="warnings"><h2>Warnings</h2><ul>${warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul></div>`;
}

/** What a page shows beyond the report itself: the trigger images, and the model's name as its user knows it. */
export interface ReportPageOptions {
  /** The triggers to show as images (scanModel's evidence). */
  evidence?: readonly TriggerEvidence[];
  /** The model as the user knows it: a path, or bucket/key@version. */
  source?: string;
}

/**
 * report.html: one self-contained page (inline CSS, SVG charts, PNG data URLs; a CSP that forbids anything
 * external) for the person who signs off on a model: verdict, what may ship and what to do first, then the
 * per-class trigger sizes, the trigger as images, the Shapley values with the pruned players marked, the
 * post-repair check, the budget, and every threshold and version. Web APIs only: the CLI and the Worker
 * render it the same way.
 */
export async function renderReportHtml(report: ScanReport, options: ReportPageOptions = {}): Promise<string> {
  const colour = VERDICT_COLOUR[report.verdict] ?? '#6e7781';
  const repair = report.repair
    ? `${REPAIR_WORDS[report.repair.status]}${report.repair.reason ? ` — ${report.repair.reason}` : ''}${report.repair.status === 'not-needed' ? '' : `; ${prunedWords(report.repair.pruned)}`}`
    : null;
  const name = options.source ?? report.input?.entry ?? 'the model';
  const input = report.input ? `${report.input.entry} (${report.input.format})` : null;
  const coverage = report.coverage ? `${report.coverage.classesScanned} of ${report.coverage.classesTotal} classes scanned` : null;
  // A row without a value is left out, rather than shown as "–".
  const row = (term: string, value: string | null, id?: string) =>
    value === null ? '' : `<dt>${esc(term)}</dt><dd${id ? ` id="${id}"` : ''}>${esc(value)}</dd>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>shapguard: ${esc(report.verdict)} — ${esc(name)}</title>
<style>
body{font:14px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:1000px;padding:0 1rem;color:#1f2328}
h1{font-size:1.3rem;margin:0;overflow-wrap:anywhere}.verdict{font-size:2.2rem;font-weight:700;color:${colour};text-transform:uppercase;margin:.2rem 0}
.meta{color:#59636e;margin:0}code{overflow-wrap:anywhere;font-size:12px}
section{margin:2rem 0}table{border-collapse:collapse}td,th{border:1px solid #d0d7de;padding:.25rem .6rem;text-align:left}
tr.flagged td{background:#ffebe9}.wide{overflow-x:auto;max-width:100%}
figure{display:inline-block;margin:0 1rem 1rem 0;text-align:center}img{image-rendering:pixelated;border:1px solid #d0d7de;max-width:100%;height:auto}
svg.chart{max-width:100%;height:auto}
pre{background:#f6f8fa;padding:1rem;overflow:auto;font-size:12px}.row{display:flex;flex-wrap:wrap}dt{font-weight:600}dd{margin:0 0 .4rem 0;overflow-wrap:anywhere}
.advice,.warn{border:1px solid;border-radius:6px;padding:.2rem 1rem;margin:1rem 0}.advice{border-color:#0969da;background:#ddf4ff}
.warn{border-color:#9a6700;background:#fff8c5}.advice h2,.warn h2{font-size:1rem;margin:.5rem 0 0}
</style></head><body>
<header><p class="meta">shapguard scan report · scanned ${esc(report.timings.startedAt.replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC'))}</p>
<h1 id="model">${esc(name)}</h1>${report.input ? `<p class="meta">sha256 <code id="digest">${esc(report.input.digest.combined)}</code></p>` : ''}
<div class="verdict" id="verdict">${esc(report.verdict)}</div>
${warningsBox(report)}${adviceBox(report)}
<dl>${row('May ship', SHIP_WORDS[shipOf(report)])}${row('Reason', report.reason)}${row('Model file', input)}
${row('Flagged targets', report.allToAll?.flagged ? 'all-to-all (every class; see the all-to-all check)' : report.detection?.flagged.join(', ') || 'none')}${row('Repair', repair)}${row('Coverage', coverage)}${row('Mode', modeText(report), 'mode')}</dl></header>
${anomalySection(report)}
${allToAllSection(report)}
${await triggerSection(options.evidence ?? [])}
${shapleySection(report)}
${checkSection(report)}
${metricsSection(report)}
${budgetSection(report)}
<section><h2>Thresholds, configuration and versions</h2><p>shapguard ${esc(report.tool.version)}, backend ${esc(report.backend.name)}${report.backend.simd ? ' (SIMD)' : ''}, ${esc(
    Object.entries(report.libraries)
      .map(([k, v]) => `${k} ${v}`)
      .join(', '),
  )}.</p><pre>${esc(JSON.stringify(report.config, null, 2))}</pre></section>
</body></html>
`;
}
