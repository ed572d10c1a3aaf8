// The upper bound of any pruning repair: players chosen greedily by the REAL trigger on REAL images, an
// oracle no data-free scanner has. Where even this cannot bring the ASR down, no pruning order can, and a
// scan that reports "not-repaired" is right to.
import { describeModel, playerLayers } from '../src/core/model/model-info.ts';
import type { TfjsLoadedModel } from '../src/core/model/tfjs-layers.ts';
import { PlayerSet, type Player } from '../src/core/stages/players.ts';
import { accuracy, attackSuccessRate } from '../test/data/evaluate.ts';
import type { ImageSet } from '../test/data/mnist.ts';
import type { ManifestEntry } from '../tools/fixtures/specs.ts';
import { prunedModel } from './pruned-model.ts';

export const ORACLE_TITLE =
  'Oracle pruning bound (players picked one at a time by the real trigger on real images; real-trigger ASR after each)';
export const ORACLE_HEADER = [
  'fixture',
  'players',
  '1',
  '2',
  '4',
  '8',
  '16',
  'players to reach ≤ 5%',
  'accuracy at the end',
  'players picked',
];
const STEPS = [1, 2, 4, 8, 16];

/** A prefix of an image set, so a greedy round (one ASR per player) stays cheap. */
function head(set: ImageSet, n: number): ImageSet {
  const px = set.shape[0] * set.shape[1] * set.shape[2];
  const count = Math.min(n, set.count);
  return { ...set, images: set.images.subarray(0, count * px), labels: set.labels.subarray(0, count), count };
}

/**
 * Greedy oracle pruning over the scan's own default player set, up to 16 players or until the real ASR is
 * at most 5%. Returns one Markdown row.
 */
export async function oraclePruningRow(fx: ManifestEntry, loaded: TfjsLoadedModel, data: ImageSet): Promise<string> {
  const attack = fx.attack!;
  const info = describeModel(loaded.model);
  const set = new PlayerSet(info, playerLayers(info));
  const probe = head(data, 600);
  const build = (pruned: Player[]) => prunedModel(loaded, pruned, set.grids);
  const chosen: Player[] = [];
  const asrAt: number[] = [];
  let asr = attackSuccessRate(loaded.model, probe, attack.trigger, attack.target);
  while (chosen.length < STEPS.at(-1)! && asr > 0.05) {
    let best: { p: Player; asr: number } | null = null;
    for (const p of set.players) {
      if (chosen.includes(p)) continue;
      const m = await build([...chosen, p]);
      const a = attackSuccessRate(m, probe, attack.trigger, attack.target);
      m.dispose();
      if (best === null || a < best.asr) best = { p, asr: a };
    }
    chosen.push(best!.p);
    asr = best!.asr;
    asrAt.push(asr);
  }
  const final = await build(chosen);
  const acc = accuracy(final, data);
  const finalAsr = attackSuccessRate(final, data, attack.trigger, attack.target);
  final.dispose();
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  // Once the ASR is down, later counts are not tried: they show "–".
  const cells = STEPS.map((k) => (asrAt[k - 1] === undefined ? '–' : pct(asrAt[k - 1]!)));
  const name = (p: Player) => `${p.layer}${p.position ? `@${p.position.join(',')}` : `:${p.channel}`}`;
  const reached = asr <= 0.05 ? String(chosen.length) : `> ${STEPS.at(-1)!}`;
  return `| ${fx.name} | ${set.size} | ${cells.join(' | ')} | ${reached} | ${pct(acc)} (ASR ${pct(finalAsr)} on all) | ${chosen.map(name).join(' ')} |`;
}
