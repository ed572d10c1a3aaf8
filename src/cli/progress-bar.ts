import type { StageName } from '../core/progress.ts';

const ORDER: StageName[] = [
  'load',
  'synthesis',
  'trigger-reverse',
  'detection',
  'all-to-all',
  'shapley',
  'pruning',
  'verification',
  'save',
];

/** Redraws at most this often: a scan ticks far faster than anyone reads. */
const REDRAW_MS = 100;

/** Where the bar draws: a terminal's stream (its width, when known, caps the line). */
export interface ProgressStream {
  write(text: string): unknown;
  columns?: number;
}

/**
 * A one-line progress bar on a terminal (stderr), redrawn in place: the stage, how far it is, what it is
 * doing (classes settled, permutations) and an estimate of the stage's time left. The estimate assumes the
 * rest of the stage goes as fast as what is done so far; it is shown once a tenth is done.
 */
export function terminalProgress(
  stream: ProgressStream,
  now: () => number = () => performance.now(),
): (stage: StageName, fraction: number, detail?: string) => void {
  let last = '';
  let lastDraw = -Infinity;
  let current: StageName | null = null;
  let stageStart = 0;
  let stageFraction = 0;
  // A pseudo-terminal without a size reports 0 columns.
  const columns = () => (stream.columns !== undefined && stream.columns > 0 ? stream.columns : 120);
  return (stage, fraction, detail) => {
    const t = now();
    const changed = stage !== current;
    if (changed || fraction === 0) {
      current = stage;
      stageStart = t;
      stageFraction = 0;
    }
    // Within a stage the bar never moves back (a stage's phases each count their own steps).
    stageFraction = Math.max(stageFraction, Math.min(1, Math.max(0, fraction)));
    const i = ORDER.indexOf(stage);
    const overall = (i + stageFraction) / ORDER.length;
    const width = 24;
    const filled = Math.round(overall * width);
    const elapsed = (t - stageStart) / 1000;
    const left =
      stageFraction >= 0.1 && stageFraction < 1 ? ` · ~${Math.ceil((elapsed * (1 - stageFraction)) / stageFraction)} s left` : '';
    const parts = [
      `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${i + 1}/${ORDER.length} ${stage} ${Math.floor(stageFraction * 100)}%`,
    ];
    if (detail) parts.push(detail);
    const line = (parts.join(' · ') + left).slice(0, Math.max(40, columns() - 1));
    const finished = stage === 'save' && fraction >= 1;
    if (line === last || (t - lastDraw < REDRAW_MS && !finished && !changed)) return;
    last = line;
    lastDraw = t;
    stream.write(`\r${line.padEnd(Math.min(100, columns() - 1))}`);
    if (finished) stream.write('\n');
  };
}
