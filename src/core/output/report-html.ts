import { playerKey } from '../stages/players.ts';
import { toBase64 } from '../util/encoding.ts';
import { encodePng } from './png.ts';
import {
  shipOf,
  type Ship,
  type ClassReport,
  type HeldBackCheck,
  type ScanReport,
  type ShapleyReport,
  type TriggerEvidence,
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

/** A bar chart as inline SVG: one bar per item, a dashed threshold line, highlighted bars in red. */
function barChart(
  items: { label: string; value: number; highlight: boolean; title: string }[],
  opts: { threshold?: number; thresholdLabel?: string; height?: number; id: string },
): string {
  const height = opts.height ?? 160;
  const bar = Math.max(4, Math.min(28, Math.floor(720 / Math.max(1, items.length))));
  const width = items.length * bar + 40;
  const max = Math.max(1e-9, ...items.map((i) => i.value), opts.threshold ?? 0);
  const y = (v: number) => height - 20 - (v / max) * (height - 30);
  const bars = items
    .map((it, i) => {
      const top = y(Math.max(0, it.value));
      return `<g><title>${esc(it.title)}</title><rect x="${30 + i * bar}" y="${top.toFixed(1)}" width="${bar - 2}" height="${(height - 20 - top).toFixed(1)}" fill="${it.highlight ? '#cf222e' : '#0969da'}"/>${items.length <= 60 ? `<text x="${30 + i * bar + (bar - 2) / 2}" y="${height - 6}" font-size="9" text-anchor="middle">${esc(it.label)}</text>` : ''}</g>`;
    })
    .join('');
  const line =
    opts.threshold === undefined
      ? ''
      : `<line x1="28" x2="${width}" y1="${y(opts.threshold).toFixed(1)}" y2="${y(opts.threshold).toFixed(1)}" stroke="#9a6700" stroke-dasharray="4 3"/><text x="${width + 4}" y="${(y(opts.threshold) + 3).toFixed(1)}" font-size="10" fill="#9a6700">${esc(opts.thresholdLabel ?? '')}</text>`;
  return `<svg id="${esc(opts.id)}" role="img" width="${width + 110}" height="${height}" viewBox="0 0 ${width + 110} ${height}" xmlns="http://www.w3.org/2000/svg"><line x1="28" x2="28" y1="8" y2="${height - 20}" stroke="#8c959f"/><text x="24" y="14" font-size="9" text-anchor="end">${esc(num(max, 2))}</text>${bars}${line}</svg>`;
}

function anomalySection(report: ScanReport): string {
  const d = report.detection;
  if (!d) return '';
  const threshold = report.config.detection.maxNormRatio;
  const items = d.classes.map((c: ClassReport) => ({
    label: String(c.class),
    value: c.normRatio,
    highlight: c.flagged,
    title: `class ${c.class}: mask norm ${num(c.maskNorm, 1)}, ${num(c.normRatio)} of the median, anomaly index ${num(c.anomalyIndex, 2)}${c.flagged ? ' — flagged' : ''}`,
  }));
  return `<section><h2>Anomaly index of every class</h2><p>The smallest trigger that sends images of other classes to each class, as a share of the median (lower is more suspicious). A class is flagged when its trigger is at most ${esc(report.config.detection.maxGap)} of the next larger class's and at most ${esc(threshold)} of the median (dashed line). Median ${esc(num(d.median, 1))}, MAD ${esc(num(d.mad, 1))}.</p>${barChart(items, { threshold, thresholdLabel: `flag at ≤ ${threshold}`, id: 'anomaly-chart' })}</section>`;
}

function shapleySection(report: ScanReport): string {
  if (report.shapley.length === 0) return '';
  const pruned = new Set((report.repair?.pruned ?? []).map(playerKey));
  const charts = report.shapley
    .map((s: ShapleyReport) => {
      const top = s.players.slice(0, 40);
      const items = top.map((p) => ({
        label: p.position ? `@${p.position.join(',')}` : String(p.channel),
        value: p.value,
        highlight: pruned.has(playerKey(p)),
        title: `${p.layer} ${p.position ? `position ${p.position.join(',')}` : `channel ${p.channel}`}: ${num(p.value, 4)}${pruned.has(playerKey(p)) ? ' — pruned' : ''}`,
      }));
      return `<h3>Target ${esc(s.target)}, round ${esc(s.round)}</h3><p>${esc(s.permutations)} permutations, ${esc(Math.round(s.evaluations))} evaluations, ${s.converged ? 'converged' : `stopped by ${esc(s.stoppedBy)}`}. Top ${top.length} of ${s.players.length} players; pruned in red.</p>${barChart(items, { id: `shapley-${s.target}-${s.round}` })}`;
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
      `<h3>Target ${esc(e.target)}</h3><div class="row">${await img('mask', e.mask, 1)}${await img('pattern', rgb(e.pattern), ch)}${await img('synthesized input', rgb(e.input), ch)}${await img('with the trigger', rgb(e.stamped), ch)}</div>`,
    );
  }
  return `<section><h2>Reverse-engineered trigger</h2><p>The mask (where the trigger sits), its pattern, and the trigger stamped on an input the scanner synthesized from the model.</p>${figures.join('')}</section>`;
}

function metricsSection(report: ScanReport): string {
  const v = report.verification;
  if (!v) return '';
  const row = (name: string, b: number | undefined, a: number | undefined) =>
    `<tr><td>${esc(name)}</td><td>${pct(b)}</td><td>${pct(a)}</td></tr>`;
  const targets = Object.keys(v.before.reversedAsr);
  return `<section><h2>Before and after</h2><p>On ${esc(v.images)} held-back synthesized images.</p><table><thead><tr><th>metric</th><th>before</th><th>after</th></tr></thead><tbody>${targets.map((t) => row(`reversed-trigger success, target ${t}`, v.before.reversedAsr[t], v.after?.reversedAsr[t])).join('')}${row('agreement with the original', v.before.agreement, v.after?.agreement)}${row('synthetic accuracy', v.before.syntheticAccuracy, v.after?.syntheticAccuracy)}</tbody></table></section>`;
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
  return `<section id="check"><h2>Post-repair check: ${c.passed ? 'passed' : 'failed'}</h2>${heldBackPart(c.heldBack)}<p>On the written model and ${esc(c.images)} fresh synthesized images the repair never saw (${pct(c.synthesisConfidence)} of them confidently their class), each flagged target's smallest trigger reaching ${pct(c.success)} success was searched for again from fresh starts, beside the clean classes with the smallest triggers (${baseline}). A target counts as repaired only if its trigger is no smaller than ${esc(report.config.detection.residualOfSmallest)} of the smallest clean class's.</p><table><thead><tr><th>target</th><th>residual trigger (L1)</th><th>of the smallest clean class's</th><th>old reversed trigger's success</th><th>removed</th></tr></thead><tbody>${rows}</tbody></table></section>`;
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
  return `<p>On ${esc(h.images)} real images of the trusted sample held back from the repair: accuracy ${pct(h.accuracyBefore)} before, ${pct(h.accuracyAfter)} after (95% interval ${pct(h.intervalAfter[0])}–${pct(h.intervalAfter[1])}); the residual search there: ${verdicts}.</p>`;
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
  return `<section><h2>Time and evaluation budget</h2><p>${esc(num(report.timings.totalSeconds, 1))} s of a ${esc(report.config.budgetSeconds)} s budget; ${esc(Math.round(report.budget.evaluationsUsed))} evaluations${report.config.maxEvals !== null ? ` of ${esc(report.config.maxEvals)}` : ''}.</p><table><thead><tr><th>stage</th><th>seconds</th><th>evaluations</th><th>steps</th><th>stopped by</th></tr></thead><tbody>${stages}</tbody></table></section>`;
}

/**
 * report.html: one self-contained page (inline CSS, SVG charts, PNG data URLs; a CSP that forbids anything
 * external) for the person who signs off on a model: verdict first, then the per-class anomaly chart, the
 * flagged trigger as images, the Shapley values with the pruned players marked, before/after metrics, the
 * budget, and every threshold and version. Web APIs only: the CLI and the Worker render it the same way.
 */
export async function renderReportHtml(report: ScanReport, evidence: readonly TriggerEvidence[] = []): Promise<string> {
  const colour = VERDICT_COLOUR[report.verdict] ?? '#6e7781';
  const repair = report.repair
    ? `${report.repair.status}${report.repair.reason ? ` — ${report.repair.reason}` : ''}; ${report.repair.pruned.length} channel(s) pruned`
    : '–';
  const input = report.input ? `${report.input.entry} (${report.input.format})` : '–';
  const coverage = report.coverage
    ? `${report.coverage.classesScanned} of ${report.coverage.classesTotal} classes scanned${report.coverage.notes.length > 0 ? `; ${report.coverage.notes.join('; ')}` : ''}`
    : '–';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>shapguard: ${esc(report.verdict)} — ${esc(input)}</title>
<style>
body{font:14px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:1000px;padding:0 1rem;color:#1f2328}
h1{font-size:1.1rem;margin:0}.verdict{font-size:2.2rem;font-weight:700;color:${colour};text-transform:uppercase;margin:.2rem 0}
section{margin:2rem 0}table{border-collapse:collapse}td,th{border:1px solid #d0d7de;padding:.25rem .6rem;text-align:left}
figure{display:inline-block;margin:0 1rem 1rem 0;text-align:center}img{image-rendering:pixelated;border:1px solid #d0d7de}
pre{background:#f6f8fa;padding:1rem;overflow:auto;font-size:12px}.row{display:flex;flex-wrap:wrap}dt{font-weight:600}dd{margin:0 0 .4rem 0}
</style></head><body>
<header><h1>shapguard scan report</h1><div class="verdict" id="verdict">${esc(report.verdict)}</div>
<dl><dt>May ship</dt><dd>${SHIP_WORDS[shipOf(report)]}</dd><dt>Reason</dt><dd>${esc(report.reason ?? '–')}</dd><dt>Model</dt><dd>${esc(input)}${report.input ? ` · digest ${esc(report.input.digest.combined)}` : ''}</dd>
<dt>Flagged targets</dt><dd>${esc(report.detection?.flagged.join(', ') || 'none')}</dd><dt>Repair</dt><dd>${esc(repair)}</dd><dt>Coverage</dt><dd>${esc(coverage)}</dd><dt>Mode</dt><dd id="mode">${esc(modeText(report))}</dd></dl></header>
${anomalySection(report)}
${await triggerSection(evidence)}
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
