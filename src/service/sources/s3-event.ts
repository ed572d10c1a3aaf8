import { HttpError } from '../errors.ts';
import type { ObjectRef } from '../jobs/job.ts';
import { field, optionalString, requireString } from './parse-json.ts';

/** S3 writes keys form-URL-encoded in event records ('+' is a space). */
export function decodeS3Key(key: string): string {
  try {
    return decodeURIComponent(key.replace(/\+/g, ' '));
  } catch {
    throw new HttpError(400, 'bad-payload', 'S3 event: object key is not URL-encoded');
  }
}

/**
 * The created objects of an S3 event notification (as SNS, SQS, Lambda and MinIO deliver it). Removals
 * and other events give nothing; S3's configuration test event gives nothing.
 */
export function objectsOfS3Event(event: unknown, what: string): ObjectRef[] {
  if (field(event, 'Event') === 's3:TestEvent') return [];
  const records = field(event, 'Records');
  if (!Array.isArray(records)) throw new HttpError(400, 'bad-payload', `${what}: no Records array`);
  const out: ObjectRef[] = [];
  for (const r of records) {
    const name = requireString(r, what, 'eventName');
    // S3 says "ObjectCreated:Put", MinIO "s3:ObjectCreated:Put".
    if (!name.replace(/^s3:/, '').startsWith('ObjectCreated:')) continue;
    const size = field(r, 's3', 'object', 'size');
    out.push({
      bucket: requireString(r, what, 's3', 'bucket', 'name'),
      key: decodeS3Key(requireString(r, what, 's3', 'object', 'key')),
      etag: optionalString(r, 's3', 'object', 'eTag'),
      versionId: optionalString(r, 's3', 'object', 'versionId'),
      ...(typeof size === 'number' ? { size } : {}),
    });
  }
  return out;
}
