import { MODEL_FILE_NAMES } from '../../core/model/files.ts';
import { PermanentJobError } from '../errors.ts';
import type { ScanRecord } from '../ledger.ts';
import { commitScan, completeCommitted, reportKey } from './commit.ts';
import type { JobDeps, JobOutcome } from './deps.ts';
import { isModelKey, jobIdFor, modelOfPart, outputFolder, type ScanJob } from './job.ts';
import { heldByAnother, releaseLease, takeLease } from './lease.ts';
import { mark, type OutputPlace } from './mark.ts';
import { placementOf, type Placement } from './placement.ts';
import { readModelFiles } from './read-model.ts';
import { readSampleObjects } from './read-sample.ts';

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

/** Records a job that can never succeed, and says so. */
async function failed(deps: JobDeps, job: ScanJob, attempt: number, reason: string): Promise<JobOutcome> {
  await record(deps, job, attempt, { state: 'failed', reason });
  return { status: 'failed', reason, folder: null };
}

/**
 * Runs one delivery of a scan job. A job naming a whole registry source (a Hub repo at a commit) scans
 * every model in it, each as its own job; otherwise see scanObject.
 */
export async function runJob(job: ScanJob, attempt: number, deps: JobDeps): Promise<JobOutcome> {
  const placement = placementOf(job.object, deps.stores, deps.registry, deps.config);
  if (typeof placement === 'string') return failed(deps, job, attempt, placement);
  if (job.object.key !== '') return scanObject(job, attempt, placement, deps);
  await record(deps, job, attempt, { state: 'running' });
  let listed: string[];
  try {
    listed = await placement.source.list('');
  } catch (err) {
    if (!(err instanceof PermanentJobError)) throw err;
    return failed(deps, job, attempt, err.message);
  }
  const keys = [...new Set(listed.map((key) => modelOfPart({ bucket: job.object.bucket, key }).key))].filter((k) =>
    isModelKey(k, deps.config),
  );
  const outcomes: JobOutcome[] = [];
  for (const key of keys.sort()) {
    const object = { bucket: job.object.bucket, key, ...(job.object.versionId ? { versionId: job.object.versionId } : {}) };
    const sub: ScanJob = { ...job, id: await jobIdFor(object), object };
    outcomes.push(await scanObject(sub, attempt, { ...placement, outputKey: `${placement.outputKey}${key}` }, deps));
  }
  const verdicts = outcomes.filter((o) => o.status !== 'busy').map((o) => ('verdict' in o ? o.verdict : 'error'));
  const worst = (['error', 'backdoor', 'incomplete', 'unsupported', 'clean'] as const).find((v) => verdicts.includes(v)) ?? null;
  const reason =
    keys.length === 0 ? `no model files (${MODEL_FILE_NAMES}) at this revision` : `${keys.length} model(s): ${keys.join(', ')}`;
  await record(deps, job, attempt, { state: 'done', verdict: worst, reason });
  return worst === null
    ? { status: 'failed', reason, folder: null }
    : {
        status: outcomes.some((o) => o.status === 'scanned') ? 'scanned' : 'already-scanned',
        verdict: worst,
        folder: `${deps.config.outputPrefix}${placement.outputKey}`,
      };
}

/**
 * Scans one model object: read it, stop if this version's report already exists, take the lease, look
 * again, scan, commit the outputs (commit.ts), release the lease. The original object is only ever read.
 * Storage faults and a model still uploading are thrown for the queue to retry; a job that can never
 * succeed is reported "failed".
 */
async function scanObject(job: ScanJob, attempt: number, placement: Placement, deps: JobDeps): Promise<JobOutcome> {
  await record(deps, job, attempt, { state: 'running' });
  let model;
  let sample;
  try {
    model = await readModelFiles(placement.source, job.object.key, deps.config.notReadyDelaySeconds);
    sample = await readSampleObjects(placement.source, job.object.key, deps.config);
  } catch (err) {
    if (!(err instanceof PermanentJobError)) throw err;
    return failed(deps, job, attempt, err.message);
  }
  const folder = outputFolder(deps.config, placement.outputKey, model.version);
  const place: OutputPlace = { store: placement.output, original: placement.source, job, folder, version: model.version };
  const done = async (
    committed: { report: { verdict: string; reason: string | null }; outputs: NonNullable<ScanRecord['outputs']> },
    status: 'scanned' | 'already-scanned',
  ): Promise<JobOutcome> => {
    await record(deps, job, attempt, {
      state: 'done',
      verdict: committed.report.verdict,
      reason: committed.report.reason,
      outputs: committed.outputs,
    });
    return { status, verdict: committed.report.verdict, folder };
  };
  const before = await completeCommitted(place, deps);
  if (before) return done(before, 'already-scanned');
  const owner = await takeLease(place.store, folder, deps);
  if (owner !== null) return { status: 'busy', owner, folder };
  // Checked again under the lease: a worker that finished meanwhile has released its lease to us.
  const meanwhile = await completeCommitted(place, deps);
  if (meanwhile) {
    await releaseLease(place.store, folder);
    return done(meanwhile, 'already-scanned');
  }
  const committed = await commitScan(place, await deps.scan(model.files, model.entry, sample), deps);
  const outcome = await done(committed, committed.ours ? 'scanned' : 'already-scanned');
  await releaseLease(place.store, folder);
  return outcome;
}

/**
 * The last delivery of a job failed on storage: leave an "error" report where the outputs would be (when
 * the object's version is known) and its marks, so a deployment gate sees a verdict, never silence.
 */
export async function failJob(job: ScanJob, attempt: number, cause: unknown, deps: JobDeps): Promise<void> {
  let reason = `gave up after ${attempt} attempts: ${cause instanceof Error ? cause.message : String(cause)}`;
  const placement = placementOf(job.object, deps.stores, deps.registry, deps.config);
  let outputs: ScanRecord['outputs'] = null;
  const version = job.object.etag ?? job.object.versionId;
  if (typeof placement !== 'string' && version !== undefined && job.object.key !== '') {
    const folder = outputFolder(deps.config, placement.outputKey, version);
    const place: OutputPlace = { store: placement.output, original: placement.source, job, folder, version };
    try {
      // A live lease means another worker is still scanning this version: its report must not be pre-empted.
      if (!(await heldByAnother(place.store, folder, deps))) {
        const report = deps.errorReport(reason);
        if (
          await place.store.put(reportKey(folder), JSON.stringify(report, null, 2), { createOnly: true, contentType: 'application/json' })
        ) {
          outputs = await mark(place, report, [], deps);
        }
      }
    } catch (err) {
      // Storage is what failed: the ledger and the dead-letter queue still say so, and this says why no report is there.
      reason += `; the error report could not be written: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
  await record(deps, job, attempt, { state: 'failed', verdict: 'error', reason, outputs });
}
