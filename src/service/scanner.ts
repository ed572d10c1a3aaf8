import { emptyReport, scanModel, type ScanOptions } from '../core/scan/scan.ts';
import type { ServiceConfig } from './config.ts';
import type { ErrorReportFn, ScanFn } from './jobs/deps.ts';

/** Engine options the service derives from its configuration; recorded in every report. */
export function scanOptions(config: ServiceConfig, toolVersion: string): ScanOptions {
  return {
    seed: config.scan.seed,
    budgetSeconds: config.scan.budgetSeconds,
    // Workers' clock stands still during CPU work: an evaluation bound keeps the budget real there.
    ...(config.scan.maxEvals !== null ? { maxEvals: config.scan.maxEvals } : {}),
    toolVersion,
  };
}

/**
 * The engine bound to the service's settings. `ready` puts tfjs on wasm the runtime's way (an imported
 * module in workerd, files on disk in Node) before the first scan.
 */
export function makeScanner(
  config: ServiceConfig,
  toolVersion: string,
  ready: () => Promise<void>,
  onInternalError?: (err: unknown) => void,
): { scan: ScanFn; errorReport: ErrorReportFn } {
  const options = scanOptions(config, toolVersion);
  return {
    scan: async (files, entry, cleanSample) => {
      await ready();
      return scanModel(files, {
        ...options,
        entry,
        ...(cleanSample ? { cleanSample } : {}),
        ...(onInternalError ? { onInternalError } : {}),
      });
    },
    errorReport: (reason) => ({ ...emptyReport(options), reason }),
  };
}
