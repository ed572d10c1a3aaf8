import type { ScanResult } from '../../core/scan/scan.ts';
import type { ScanReport } from '../../core/output/report.ts';
import { renderReportHtml } from '../../core/output/report-html.ts';
import type { ServiceConfig } from '../config.ts';
import { NotReadyError, TransientError } from '../errors.ts';
import { isModelKey, jobIdFor, modelOfPart, outputFolder, type ScanJob } from './job.ts';
import type { Ledger, ScanRecord } from '../ledger.ts';
import type { AttestationSigner } from '../../core/output/attest.ts';
import { ensureAttestation } from './attestation.ts';
import { mark, type Notifier } from './mark.ts';
import { MODEL_FILE_NAMES } from '../../core/model/files.ts';
import { PermanentJobError } from '../errors.ts';
import { readModelFiles } from './read-model.ts';
import { placementOf, type Placement, type RegistryResolver } from './placement.ts';
import type { ObjectStore, StoreResolver } from '../storage/object-store.ts';

/** Runs the engine on a model's files; the runtime binds the wasm backend, seed and budget. */
export type ScanFn = (files: ReadonlyMap<string, Uint8Array>, entry: string) => Promise<ScanResult>;

/** An "error" report for a job that could not be scanned (same schema as every other report). */
export type ErrorReportFn = (reason: string) => ScanReport;

export interface JobDeps {
  config: ServiceConfig;
  stores: StoreResolver;
  /** Registry sources (Hugging Face Hub repos, MLflow versions); absent where none is configured. */
  registry?: RegistryResolver;
  ledger: Ledger;
  scan: ScanFn;
  errorReport: ErrorReportFn;
  /** Names this worker in leases. */
  workerId: string;
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

interface Lease {
  owner: string;
  expiresAt: string;
}

const decoder = new TextDecoder();

/** Someone else's unexpired lease on the folder, or null. */
async function liveLease(store: ObjectStore, key: string, deps: JobDeps): Promise<(Lease & { etag: string }) | null> {
  const held = await store.get(key);
  if (held === null) return null;
  const lease = JSON.parse(decoder.decode(held.body)) as Lease;
  return lease.owner !== deps.workerId && Date.parse(lease.expiresAt) > deps.now().getTime() ? { ...lease, etag: held.etag } : null;
}

/**
 * Takes the object's scan for this worker: a create-only lease object, or an expired one (or our own,
 * left by a crash) replaced by If-Match so two takers cannot both win. Returns the owner of a live lease
 * instead: that worker writes the outputs, and if it dies its own delivery is retried, so this one is done.
 */
async function takeLease(store: ObjectStore, key: string, deps: JobDeps): Promise<string | null> {
  const now = deps.now();
  const lease = JSON.stringify({ owner: deps.workerId, expiresAt: new Date(now.getTime() + deps.config.leaseSeconds * 1000).toISOString() } satisfies Lease);
  if (await store.put(key, lease, { createOnly: true, contentType: 'application/json' })) return null;
  const held = await store.get(key);
  if (held === null) throw new NotReadyError('lease vanished while taking it', 1);
  const current = JSON.parse(decoder.decode(held.body)) as Lease;
  if (current.owner !== deps.workerId && Date.parse(current.expiresAt) > now.getTime()) return current.owner;
  if (!(await store.put(key, lease, { ifMatch: held.etag, contentType: 'application/json' }))) {
    throw new NotReadyError('another worker took the expired lease first', deps.config.notReadyDelaySeconds);
  }
  return null;
}

/** Writes a repaired file create-only; a leftover of a crashed attempt of ours (we hold the lease) is replaced. */
async function writeRepaired(store: ObjectStore, key: string, bytes: Uint8Array): Promise<void> {
  if (await store.put(key, bytes, { createOnly: true })) return;
  const existing = await store.get(key);
  const same = existing !== null && existing.body.length === bytes.length && existing.body.every((b, i) => b === bytes[i]);
  if (!same) await store.put(key, bytes);
}

async function record(deps: JobDeps, job: ScanJob, attempt: number, patch: Partial<ScanRecord>): Promise<void> {
  const previous = await deps.ledger.get(job.id);
  await deps.ledger.put({
    id: job.id,
    state: 'queued',
    object: job.object,
    via: job.via,
    receivedAt: job.receivedAt,
    verdict: null,
    reason: null,
    outputs: null,
    ...previous,
    ...patch,
    attempts: Math.max(previous?.attempts ?? 0, attempt),
    updatedAt: deps.now().toISOString(),
  });
}

/**
 * Runs one delivery of a scan job. A job naming a whole registry source (a Hub repo at a commit) scans
 * every model in it, each as its own job; otherwise see scanObject.
 */
export async function runJob(job: ScanJob, attempt: number, deps: JobDeps): Promise<JobOutcome> {
  const placement = placementOf(job.object, deps.stores, deps.registry, deps.config);
  if (typeof placement === 'string') {
    await record(deps, job, attempt, { state: 'failed', reason: placement });
    return { status: 'failed', reason: placement, folder: null };
  }
  if (job.object.key !== '') return scanObject(job, attempt, placement, deps);
  await record(deps, job, attempt, { state: 'running' });
  let listed: string[];
  try {
    listed = await placement.source.list('');
  } catch (err) {
    if (!(err instanceof PermanentJobError)) throw err;
    await record(deps, job, attempt, { state: 'failed', reason: err.message });
    return { status: 'failed', reason: err.message, folder: null };
  }
  const keys = [...new Set(listed.map((key) => modelOfPart({ bucket: job.object.bucket, key }).key))].filter((k) => isModelKey(k, deps.config));
  const outcomes: JobOutcome[] = [];
  for (const key of keys.sort()) {
    const object = { bucket: job.object.bucket, key, ...(job.object.versionId ? { versionId: job.object.versionId } : {}) };
    const sub: ScanJob = { ...job, id: await jobIdFor(object), object };
    outcomes.push(await scanObject(sub, attempt, { ...placement, outputKey: `${placement.outputKey}${key}` }, deps));
  }
  const verdicts = outcomes.filter((o) => o.status !== 'busy').map((o) => ('verdict' in o ? o.verdict : 'error'));
  const worst = (['error', 'backdoor', 'incomplete', 'unsupported', 'clean'] as const).find((v) => verdicts.includes(v)) ?? null;
  const reason = keys.length === 0 ? `no model files (${MODEL_FILE_NAMES}) at this revision` : `${keys.length} model(s): ${keys.join(', ')}`;
  await record(deps, job, attempt, { state: 'done', verdict: worst, reason });
  return worst === null ? { status: 'failed', reason, folder: null } : { status: outcomes.some((o) => o.status === 'scanned') ? 'scanned' : 'already-scanned', verdict: worst, folder: `${deps.config.outputPrefix}${placement.outputKey}` };
}

/**
 * Scans one model object: read it, skip it if this version's report already exists, take the lease, scan,
 * write repaired files, then the report create-only (its presence means the outputs are complete), then
 * the gating marks. The original object is only ever read. Storage faults and a model still uploading are
 * thrown for the queue to retry; a job that can never succeed is reported "failed".
 */
async function scanObject(job: ScanJob, attempt: number, placement: Placement, deps: JobDeps): Promise<JobOutcome> {
  const { source, output: store } = placement;
  await record(deps, job, attempt, { state: 'running' });
  let model;
  try {
    model = await readModelFiles(source, job.object.key, deps.config.notReadyDelaySeconds);
  } catch (err) {
    if (!(err instanceof PermanentJobError)) throw err;
    await record(deps, job, attempt, { state: 'failed', reason: err.message });
    return { status: 'failed', reason: err.message, folder: null };
  }
  const folder = outputFolder(deps.config, placement.outputKey, model.version);
  const reportKey = `${folder}report.json`;
  const marks = (report: ScanReport, repaired: string[], first = false) => mark(store, source, job, folder, report, repaired, deps, first);
  const finished = async (): Promise<JobOutcome | null> => {
    const existing = await store.get(reportKey);
    if (existing === null) return null;
    const report = JSON.parse(decoder.decode(existing.body)) as ScanReport;
    if (deps.sign) await ensureAttestation(store, folder, existing.body, report, deps.sign);
    const outputs = await marks(report, await store.list(`${folder}repaired/`));
    await record(deps, job, attempt, { state: 'done', verdict: report.verdict, reason: report.reason, outputs });
    return { status: 'already-scanned', verdict: report.verdict, folder };
  };
  const before = await finished();
  if (before) return before;
  const owner = await takeLease(store, `${folder}.lease`, deps);
  if (owner !== null) return { status: 'busy', owner, folder };
  // Checked again under the lease: a worker that finished meanwhile has released its lease to us.
  const meanwhile = await finished();
  if (meanwhile) {
    await store.delete(`${folder}.lease`);
    return meanwhile;
  }
  const { report, repaired, evidence } = await deps.scan(model.files, model.entry);
  const repairedKeys: string[] = [];
  for (const [name, bytes] of repaired ?? []) {
    await writeRepaired(store, `${folder}repaired/${name}`, bytes);
    repairedKeys.push(`${folder}repaired/${name}`);
  }
  // The human-readable page, before the report: a visible report.json means report.html is there too.
  await store.put(`${folder}report.html`, await renderReportHtml(report, evidence), { contentType: 'text/html; charset=utf-8' });
  let stored = report;
  let ours = true;
  const reportJson = JSON.stringify(report, null, 2);
  let storedBytes = new TextEncoder().encode(reportJson);
  if (!(await store.put(reportKey, reportJson, { createOnly: true, contentType: 'application/json' }))) {
    // A report is there already: ours from a write whose answer was lost (the connection cut after the
    // server stored it), or another worker's whose lease ran out under it. The stored one stands.
    const theirs = await store.get(reportKey);
    if (theirs === null) throw new TransientError('report.json refused as existing but cannot be read');
    const text = decoder.decode(theirs.body);
    stored = JSON.parse(text) as ScanReport;
    storedBytes = theirs.body as Uint8Array<ArrayBuffer>;
    ours = text === reportJson;
  }
  if (deps.sign) await ensureAttestation(store, folder, storedBytes, stored, deps.sign);
  const outputs = await marks(stored, repairedKeys, ours);
  await record(deps, job, attempt, { state: 'done', verdict: stored.verdict, reason: stored.reason, outputs });
  // The report now stops every later attempt; the lease has no more work to guard.
  await store.delete(`${folder}.lease`);
  return { status: ours ? 'scanned' : 'already-scanned', verdict: stored.verdict, folder };
}

/**
 * The last delivery of a job failed on storage: leave an "error" report where the outputs would be (when
 * the object's version is known) and its marks, so a deployment gate sees a verdict, never silence.
 */
export async function failJob(job: ScanJob, attempt: number, cause: unknown, deps: JobDeps): Promise<void> {
  const reason = `gave up after ${attempt} attempts: ${cause instanceof Error ? cause.message : String(cause)}`;
  const placement = placementOf(job.object, deps.stores, deps.registry, deps.config);
  let outputs: ScanRecord['outputs'] = null;
  const version = job.object.etag ?? job.object.versionId;
  if (typeof placement !== 'string' && version !== undefined && job.object.key !== '') {
    const folder = outputFolder(deps.config, placement.outputKey, version);
    try {
      // A live lease means another worker is still scanning this version: its report must not be pre-empted.
      if ((await liveLease(placement.output, `${folder}.lease`, deps)) !== null) throw new Error('busy');
      const report = deps.errorReport(reason);
      if (await placement.output.put(`${folder}report.json`, JSON.stringify(report, null, 2), { createOnly: true, contentType: 'application/json' })) {
        outputs = await mark(placement.output, placement.source, job, folder, report, [], deps);
      }
    } catch {
      // Storage is what failed: the ledger and the dead-letter queue still say so.
    }
  }
  await record(deps, job, attempt, { state: 'failed', verdict: 'error', reason, outputs });
}
