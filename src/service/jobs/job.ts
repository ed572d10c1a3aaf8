import { entryOfPart, isModelEntry } from '../../core/model/files.ts';
import { sha256Hex } from '../../core/util/digest.ts';
import { utf8 } from '../bytes.ts';
import type { ServiceConfig } from '../config.ts';

/** Where a delivery came from; also the webhook route's last segment. */
export type SourceName = 'sns' | 'eventbridge' | 'minio' | 'r2' | 'standard' | 'huggingface' | 'mlflow' | 'lambda' | 'api';

/** An object in a bucket as an event names it. The ETag (or version) makes a scan of it idempotent. */
export interface ObjectRef {
  bucket: string;
  key: string;
  etag?: string;
  versionId?: string;
  size?: number;
}

/** A queue message: which object to scan, never the model itself (queue messages are small). */
export interface ScanJob {
  type: 'shapguard.scan';
  id: string;
  object: ObjectRef;
  via: SourceName;
  deliveryId: string | null;
  receivedAt: string;
}

/** An ETag without the quotes S3 and SNS put around it. */
export function bareEtag(etag: string | undefined): string | undefined {
  return etag === undefined ? undefined : etag.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

/**
 * Whether an uploaded key is something to scan: a model by its suffix, under a configured prefix, and
 * not one of the service's own outputs (which would otherwise scan its repaired copies forever).
 */
export function isModelKey(key: string, config: Pick<ServiceConfig, 'outputPrefix' | 'modelPrefixes'>): boolean {
  if (key.startsWith(config.outputPrefix)) return false;
  if (config.modelPrefixes.length > 0 && !config.modelPrefixes.some((p) => key.startsWith(p))) return false;
  return isModelEntry(key);
}

/**
 * The job id: a digest of bucket, key and ETag/version, so every delivery about the same upload (SNS and
 * EventBridge both on, a sender's retry) lands on the same id and the same outputs.
 */
export async function jobIdFor(object: ObjectRef): Promise<string> {
  const identity = [object.bucket, object.key, bareEtag(object.etag) ?? '', object.versionId ?? ''].join('\n');
  return `scan_${(await sha256Hex(utf8(identity))).slice(0, 24)}`;
}

/**
 * The model an uploaded part belongs to (core/model/files.ts): a weight shard re-scans the model.json beside
 * it, a Keras 3 folder's config.json or metadata.json its model.weights.h5 (whose ETag is then unknown and
 * read at scan time).
 */
export function modelOfPart(object: ObjectRef): ObjectRef {
  if (object.key === '') return object;
  const entry = entryOfPart(object.key);
  return entry === null || entry === object.key ? object : { bucket: object.bucket, key: entry };
}

/** Builds the queue messages for the model objects among `objects`; other keys are dropped. */
export async function jobsFor(
  objects: readonly ObjectRef[],
  via: SourceName,
  deliveryId: string | null,
  config: ServiceConfig,
  now: Date,
): Promise<ScanJob[]> {
  const jobs: ScanJob[] = [];
  const seen = new Set<string>();
  for (const part of objects) {
    if (part.key.startsWith(config.outputPrefix)) continue;
    const object = modelOfPart(part);
    // An empty key names a whole registry source (a Hub repo at a commit): its models are listed at scan time.
    const wholeSource = object.key === '' && (object.bucket.startsWith('hf:') || object.bucket.startsWith('mlflow:'));
    if (!wholeSource && !isModelKey(object.key, config)) continue;
    const ref: ObjectRef = { ...object };
    if (object.etag !== undefined) ref.etag = bareEtag(object.etag);
    const id = await jobIdFor(ref);
    if (seen.has(id)) continue;
    seen.add(id);
    jobs.push({ type: 'shapguard.scan', id, object: ref, via, deliveryId, receivedAt: now.toISOString() });
  }
  return jobs;
}

/** Where the outputs of one scan of one object version go. */
export function outputFolder(config: Pick<ServiceConfig, 'outputPrefix'>, key: string, etag: string): string {
  return `${config.outputPrefix}${key}/${etag}/`;
}
