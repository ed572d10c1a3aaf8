import type { LoadedModel } from '../../src/core/model/loaded-model.ts';
import { prepare, type ScanContext } from '../../src/core/scan/context.ts';
import { stageConfigs, type ScanOptions } from '../../src/core/scan/options.ts';
import { ReportBuilder } from '../../src/core/scan/report-builder.ts';

/**
 * Runs `steps` on a scan's prepared context (model loaded, plan made, as scanModel starts) and disposes the
 * model afterwards: for tests of some stages without the whole scan around them. `out` is the report being
 * built, to read what the steps recorded.
 */
export async function withScanContext<T>(
  files: ReadonlyMap<string, Uint8Array>,
  options: ScanOptions,
  steps: (ctx: ScanContext, out: ReportBuilder) => T,
): Promise<T> {
  const now = () => performance.now();
  const out = new ReportBuilder(options, stageConfigs(options), now);
  let loaded: LoadedModel | undefined;
  try {
    return steps(await prepare(files, options, out, now, (m) => (loaded = m)), out);
  } finally {
    loaded?.model.dispose();
  }
}
