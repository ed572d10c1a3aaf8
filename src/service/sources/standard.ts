import { HttpError } from '../errors.ts';
import type { ObjectRef } from '../jobs/job.ts';
import { field, optionalString, requireString } from './parse-json.ts';

/**
 * The object of a generic Standard Webhooks delivery. Standard Webhooks fixes the envelope
 * ({type, timestamp, data}), not the data; ours is `model.uploaded` with data {bucket, key, etag?, versionId?}
 * (webhooks/README.md, "Any Standard Webhooks sender"). Other types give nothing.
 */
export function objectsOfStandardWebhook(body: Record<string, unknown>): ObjectRef[] {
  if (typeof body.type !== 'string') throw new HttpError(400, 'bad-payload', 'Standard Webhooks payload: type is missing');
  if (body.type !== 'model.uploaded') return [];
  const size = field(body, 'data', 'size');
  return [
    {
      bucket: requireString(body, 'model.uploaded', 'data', 'bucket'),
      key: requireString(body, 'model.uploaded', 'data', 'key'),
      etag: optionalString(body, 'data', 'etag'),
      versionId: optionalString(body, 'data', 'versionId'),
      ...(typeof size === 'number' ? { size } : {}),
    },
  ];
}
