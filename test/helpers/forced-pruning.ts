import type * as tfl from '@tensorflow/tfjs-layers';
import type { ScanReport } from '../../src/core/output/report.ts';
import { scanModel, type ScanOptions } from '../../src/core/scan/scan.ts';
import { playerKey } from '../../src/core/stages/players.ts';
import { readModelFiles } from '../../src/node/read-model.ts';
import { prunedByKeys } from '../../bench/pruned-model.ts';
import { trustedSample, type SampleDataset } from './sample.ts';
import { TEST_BOUNDS } from './scan-bounds.ts';

/**
 * A few-shot scan (trustedSample's 10 images per class, seed 1) with settings that force a
 * pruning where the scan would not go, and the model that pruning makes, rebuilt from the report's players:
 * what the certificate tests judge on real images with the planted trigger. The caller disposes `candidate`.
 */
export async function forcedPruningScan(
  path: string,
  dataset: SampleDataset,
  force: Pick<ScanOptions, 'layers' | 'pruning'>,
): Promise<{ report: ScanReport; repaired: Map<string, Uint8Array> | null; candidate: tfl.LayersModel | null }> {
  const { files, entry } = await readModelFiles(path);
  const cleanSample = await trustedSample(dataset, 10);
  const { report, repaired } = await scanModel(files, { entry, seed: 1, toolVersion: 'test', ...TEST_BOUNDS, cleanSample, ...force });
  const pruned = report.repair?.pruned ?? [];
  if (pruned.length === 0) return { report, repaired, candidate: null };
  const candidate = await prunedByKeys(files, entry, pruned.map(playerKey), force.layers);
  return { report, repaired, candidate };
}
