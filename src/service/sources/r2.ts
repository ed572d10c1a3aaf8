import type { ObjectRef } from '../jobs/job.ts';
import { field, optionalString } from './parse-json.ts';

/** R2 notification actions that leave a new object behind. */
const CREATING = new Set(['PutObject', 'CopyObject', 'CompleteMultipartUpload']);

/** True for the shape of an R2 event notification (Cloudflare's docs, "Event notifications"). */
export function isR2Event(body: unknown): boolean {
  return (
    typeof field(body, 'action') === 'string' &&
    typeof field(body, 'bucket') === 'string' &&
    typeof field(body, 'object', 'key') === 'string'
  );
}

/** The created object of an R2 event notification; deletions give nothing. R2 keys are not encoded. */
export function objectsOfR2Event(event: unknown): ObjectRef[] {
  if (!isR2Event(event) || !CREATING.has(field(event, 'action') as string)) return [];
  const size = field(event, 'object', 'size');
  return [
    {
      bucket: field(event, 'bucket') as string,
      key: field(event, 'object', 'key') as string,
      etag: optionalString(event, 'object', 'eTag'),
      ...(typeof size === 'number' ? { size } : {}),
    },
  ];
}
