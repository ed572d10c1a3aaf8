import type { AttestationSigner } from '../../core/output/attest.ts';
import { renderReportHtml } from '../../core/output/report-html.ts';
import type { ScanReport } from '../../core/output/report.ts';
import type { ScanResult } from '../../core/scan/scan.ts';
import { TransientError } from '../errors.ts';
import type { ScanRecord } from '../ledger.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { ensureAttestation } from './attestation.ts';
import { mark, type Notifier, type OutputPlace } from './mark.ts';

/**
 * The commit order of a scan's outputs, in one place. report.json, written create-only, is the commit
 * point: everything it names is written before it (repaired files, then report.html), and everything
 * derived from it after (the attestation, then the marks), by whichever delivery finds it without them.
 * A crash anywhere leaves either no report (the next delivery scans again, replacing our own leftovers)
 * or a report whose followers the next delivery completes.
 */

export interface CommitDeps {
  now: () => Date;
  notify?: Notifier;
  sign?: AttestationSigner;
}

/** What the commit left: the report that stands (ours, or one committed first by someone else). */
export interface Committed {
  report: ScanReport;
  /** Whether the report that stands is this delivery's. */
  ours: boolean;
  outputs: NonNullable<ScanRecord['outputs']>;
}

const decoder = new TextDecoder();

export function reportKey(folder: string): string {
  return `${folder}report.json`;
}

/** Writes a repaired file create-only; a leftover of a crashed attempt of ours (we hold the lease) is replaced. */
async function writeRepaired(store: ObjectStore, key: string, bytes: Uint8Array): Promise<void> {
  if (await store.put(key, bytes, { createOnly: true })) return;
  const existing = await store.get(key);
  const same = existing !== null && existing.body.length === bytes.length && existing.body.every((b, i) => b === bytes[i]);
  if (!same) await store.put(key, bytes);
}

/** The followers of a stored report: its attestation if it is missing, then the marks. */
async function follow(
  place: OutputPlace,
  report: ScanReport,
  reportBytes: Uint8Array,
  repaired: string[],
  deps: CommitDeps,
  first: boolean,
): Promise<NonNullable<ScanRecord['outputs']>> {
  if (deps.sign) await ensureAttestation(place.store, place.folder, reportBytes, report, deps.sign);
  return mark(place, report, repaired, deps, first);
}

/** A report already committed for this version, with its followers completed; null when there is none. */
export async function completeCommitted(place: OutputPlace, deps: CommitDeps): Promise<Committed | null> {
  const existing = await place.store.get(reportKey(place.folder));
  if (existing === null) return null;
  const report = JSON.parse(decoder.decode(existing.body)) as ScanReport;
  const outputs = await follow(place, report, existing.body, await place.store.list(`${place.folder}repaired/`), deps, false);
  return { report, ours: false, outputs };
}

/** The model as its owner names it on the report page: bucket/key and the version read. */
function sourceOf(place: OutputPlace): string {
  return `${place.job.object.bucket}/${place.job.object.key} (version ${place.version})`;
}

/** Commits a fresh scan's outputs in order; the caller holds the folder's lease. */
export async function commitScan(place: OutputPlace, result: ScanResult, deps: CommitDeps): Promise<Committed> {
  const { store, folder } = place;
  const repairedKeys: string[] = [];
  for (const [name, bytes] of result.repaired ?? []) {
    await writeRepaired(store, `${folder}repaired/${name}`, bytes);
    repairedKeys.push(`${folder}repaired/${name}`);
  }
  // The human-readable page, before the report: a visible report.json means report.html is there too.
  await store.put(`${folder}report.html`, await renderReportHtml(result.report, { evidence: result.evidence, source: sourceOf(place) }), {
    contentType: 'text/html; charset=utf-8',
  });
  let stored = result.report;
  let ours = true;
  const reportJson = JSON.stringify(result.report, null, 2);
  let storedBytes: Uint8Array = new TextEncoder().encode(reportJson);
  if (!(await store.put(reportKey(folder), reportJson, { createOnly: true, contentType: 'application/json' }))) {
    // A report is there already: ours from a write whose answer was lost (the connection cut after the
    // server stored it), or another worker's whose lease ran out under it. The stored one stands.
    const theirs = await store.get(reportKey(folder));
    if (theirs === null) throw new TransientError('report.json refused as existing but cannot be read');
    const text = decoder.decode(theirs.body);
    stored = JSON.parse(text) as ScanReport;
    storedBytes = theirs.body;
    ours = text === reportJson;
  }
  const outputs = await follow(place, stored, storedBytes, repairedKeys, deps, ours);
  return { report: stored, ours, outputs };
}
