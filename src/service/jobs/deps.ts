import type { SampleFile } from '../../core/sample/sample.ts';
import type { AttestationSigner } from '../../core/output/attest.ts';
import type { ScanReport } from '../../core/output/report.ts';
import type { ScanResult } from '../../core/scan/scan.ts';
import type { ServiceConfig } from '../config.ts';
import type { Ledger } from '../ledger.ts';
import type { StoreResolver } from '../storage/object-store.ts';
import type { Notifier } from './mark.ts';
import type { RegistryResolver } from './placement.ts';

/** Runs the engine on a model's files; the runtime binds the wasm backend, seed and budget. */
/** Scans a model's files; `cleanSample` (few-shot mode) is the trusted sample configured for it. */
export type ScanFn = (files: ReadonlyMap<string, Uint8Array>, entry: string, cleanSample?: readonly SampleFile[]) => Promise<ScanResult>;

/** An "error" report for a job that could not be scanned (same schema as every other report). */
export type ErrorReportFn = (reason: string) => ScanReport;

/** Everything a job needs from its runtime; service/compose.ts builds it for each entry. */
export interface JobDeps {
  config: ServiceConfig;
  stores: StoreResolver;
  /** Registry sources (Hugging Face Hub repos, MLflow versions); absent where none is configured. */
  registry?: RegistryResolver;
  ledger: Ledger;
  scan: ScanFn;
  errorReport: ErrorReportFn;
  /** Names this process in the leases it holds (one id per Worker isolate, Lambda container or Node state database). */
  holderId: string;
  now: () => Date;
  /** Signed callbacks when a scan is marked (CALLBACK_URLS). */
  notify?: Notifier;
  /** Signs attestation.dsse.json beside each report (SHAPGUARD_SIGNING_KEY). */
  sign?: AttestationSigner;
}

/** What became of one delivery of a job. */
export type JobOutcome =
  | { status: 'scanned' | 'already-scanned'; verdict: string; folder: string }
  /** Another worker holds a live lease on this version: it writes the outputs; this delivery is done. */
  | { status: 'busy'; owner: string; folder: string }
  | { status: 'failed'; reason: string; folder: string | null };
