import type { StageName } from '../core/progress.ts';

const ORDER: StageName[] = ['load', 'synthesis', 'trigger-reverse', 'detection', 'shapley', 'pruning', 'verification', 'save'];

/** A one-line stage indicator and progress bar on a terminal (stderr), redrawn in place. */
export function terminalProgress(stream: NodeJS.WriteStream): (stage: StageName, fraction: number) => void {
  let last = '';
  return (stage, fraction) => {
    const i = ORDER.indexOf(stage);
    const overall = (i + Math.min(1, Math.max(0, fraction))) / ORDER.length;
    const width = 24;
    const filled = Math.round(overall * width);
    const line = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${i + 1}/${ORDER.length} ${stage}`;
    if (line === last) return;
    last = line;
    stream.write(`\r${line.padEnd(60)}`);
    if (stage === 'save' && fraction >= 1) stream.write('\n');
  };
}
