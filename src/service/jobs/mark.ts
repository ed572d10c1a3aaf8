import { shipOf, type ScanReport, type Ship } from '../../core/output/report.ts';
import type { ScanRecord } from '../ledger.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import type { ScanJob } from './job.ts';

/** Sends a finished scan's mark to whoever asked to hear (signed callbacks). */
export type Notifier = (mark: VerdictMark) => Promise<void>;

/** S3 allows this many tags on an object; PutObjectTagging replaces the whole set. */
export const MAX_S3_TAGS = 10;

/** The gating document written beside the outputs; a deployment reads it (or the tags) before shipping. */
export interface VerdictMark {
  verdict: ScanReport['verdict'];
  /**
   * Whether the object at bucket/key, the upload itself, may ship: true only when it scanned clean. A
   * repaired backdoor leaves the upload false (a gate reading only this field never ships the backdoor).
   */
  deployable: boolean;
  /** What may ship instead of or as the upload; with 'repaired', the files in `repaired`. */
  ship: Ship;
  scanId: string;
  bucket: string;
  key: string;
  version: string;
  report: string;
  /** The certified repaired model's keys in the output store; empty unless `ship` is 'repaired'. */
  repaired: string[];
  tool: string;
  markedAt: string;
}

/** Where one scan of one object version puts its outputs, and whose object it marks. */
export interface OutputPlace {
  /** The store the outputs go to. */
  store: ObjectStore;
  /** The store holding the original: tagged where it has tags (S3 objects, MLflow model versions). */
  original: ObjectStore | null;
  job: ScanJob;
  /** `<prefix><key>/<version>/`. */
  folder: string;
  /** The version of the object that was read (its ETag, or a digest of its parts' ETags). */
  version: string;
}

/** S3 tag values are at most 256 characters. */
const MAX_TAG_VALUE = 256;

/**
 * The tags we own on an original object (anything else on it is the user's and is kept): the verdict,
 * whether this object may ship, what may ship in its place, where the report is, and which scanner version
 * said so. A report key too long for a tag value is left out (verdict.json names it).
 */
export function verdictTags(report: ScanReport, reportKey: string): Record<string, string> {
  const ship = shipOf(report);
  return {
    'shapguard-verdict': report.verdict,
    'shapguard-deployable': String(ship === 'original'),
    'shapguard-ship': ship,
    ...provenanceTags(report, reportKey),
  };
}

/** Where the report is and which scanner version wrote it; a report key too long for a tag value is left out. */
function provenanceTags(report: ScanReport, reportKey: string): Record<string, string> {
  return {
    ...(reportKey.length <= MAX_TAG_VALUE ? { 'shapguard-report': reportKey } : {}),
    'shapguard-version': report.tool.version,
  };
}

/**
 * The tags of a certified repair's files in the output store, so one bucket policy ("read only what is
 * tagged deployable") lets a deployment read the repaired copy and not the upload. Written after
 * report.json: a crashed scan's leftover repaired files are never tagged deployable.
 */
export function repairedTags(report: ScanReport, reportKey: string): Record<string, string> {
  return {
    'shapguard-verdict': 'repaired',
    'shapguard-deployable': 'true',
    ...provenanceTags(report, reportKey),
  };
}

/**
 * Merges our tags into the object's existing set (ours replace our own keys only). Null when the result
 * would exceed S3's ten tags: we never drop a user's tag to make room.
 */
export function mergeTags(existing: Record<string, string>, ours: Record<string, string>): Record<string, string> | null {
  const merged = { ...existing, ...ours };
  return Object.keys(merged).length > MAX_S3_TAGS ? null : merged;
}

/**
 * Marks the upload so a deployment can be gated on it: verdict.json beside the outputs (on every store;
 * the only mark on R2, which has no tags), S3 tags on the original object (merged with its own) and on a
 * certified repair's files, and the signed callbacks. `first` is true when this delivery wrote the report:
 * one-time announcements (a Hub discussion) go out only then.
 */
export async function mark(
  place: OutputPlace,
  report: ScanReport,
  repaired: string[],
  deps: { now: () => Date; notify?: Notifier },
  first = false,
): Promise<NonNullable<ScanRecord['outputs']>> {
  const { store, original, job, folder } = place;
  const ship = shipOf(report);
  const verdict: VerdictMark = {
    verdict: report.verdict,
    deployable: ship === 'original',
    ship,
    scanId: job.id,
    bucket: job.object.bucket,
    key: job.object.key,
    version: place.version,
    report: `${folder}report.json`,
    repaired: ship === 'repaired' ? repaired : [],
    tool: `shapguard ${report.tool.version}`,
    markedAt: deps.now().toISOString(),
  };
  await store.put(`${folder}verdict.json`, JSON.stringify(verdict, null, 2), { contentType: 'application/json' });
  if (ship === 'repaired' && store.tags) {
    for (const key of verdict.repaired) await store.tags.put(key, repairedTags(report, verdict.report));
  }
  if (original?.tags) {
    const merged = mergeTags(await original.tags.get(job.object.key), verdictTags(report, verdict.report));
    if (merged !== null) await original.tags.put(job.object.key, merged);
  }
  if (first && original?.announce) await original.announce(job.object.key, verdict);
  // Signed callbacks: a failure throws (the job is retried and calls again); receivers dedupe on the id.
  await deps.notify?.(verdict);
  return { report: verdict.report, verdict: `${folder}verdict.json`, repaired: verdict.repaired, ship };
}
