// The same scan under other seeds: the synthetic images and the trigger reverse's starting points change
// with the seed, so whether a borderline backdoor is found does too. One seed's table hides that.
import { loadTfjsModel } from '../src/core/model/tfjs-layers.ts';
import { scanModel, type ScanResult } from '../src/core/scan/scan.ts';
import { attackSuccessRate } from '../test/data/evaluate.ts';
import type { ImageSet } from '../test/data/mnist.ts';
import type { ManifestEntry } from '../tools/fixtures/specs.ts';

export const SEEDS = [1, 2, 3, 4, 5];
export const SEEDS_TITLE = `Verdict over seeds ${SEEDS.join(', ')} (default budget; per seed: flagged classes, players pruned, real-trigger ASR after repair)`;
export const SEEDS_HEADER = ['fixture', 'truth', 'right verdicts', ...SEEDS.map((s) => `seed ${s}`)];

/**
 * One Markdown row: every seed's scan of one fixture, judged against what was planted. `first` is the
 * caller's scan at SEEDS[0] with the same options, reused rather than run again.
 */
export async function seedsRow(
  fx: ManifestEntry,
  files: Map<string, Uint8Array>,
  entry: string,
  data: ImageSet,
  first: Pick<ScanResult, 'report' | 'repaired'>,
): Promise<string> {
  const truth = fx.attack ? `backdoor → ${fx.attack.target}` : 'clean';
  let right = 0;
  const cells: string[] = [];
  for (const seed of SEEDS) {
    const { report, repaired } = seed === SEEDS[0] ? first : await scanModel(files, { entry, seed, toolVersion: 'bench' });
    const flagged = report.detection?.flagged ?? [];
    const ok = fx.attack ? report.verdict === 'backdoor' && flagged.includes(fx.attack.target) : report.verdict === 'clean';
    if (ok) right++;
    let cell = report.verdict === 'clean' ? 'clean' : `${report.verdict} ${flagged.join(',') || '–'}`;
    if (report.repair) cell += `, ${report.repair.pruned.length} pruned`;
    if (fx.attack && repaired) {
      const model = (await loadTfjsModel(repaired, entry)).model;
      cell += `, ASR ${(attackSuccessRate(model, data, fx.attack.trigger, fx.attack.target) * 100).toFixed(1)}%`;
      model.dispose();
    }
    cells.push(cell);
  }
  return `| ${fx.name} | ${truth} | ${right}/${SEEDS.length} | ${cells.join(' | ')} |`;
}
