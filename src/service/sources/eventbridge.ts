import type { ObjectRef } from '../jobs/job.ts';
import { field, optionalString, requireString } from './parse-json.ts';

/**
 * The object of an EventBridge "Object Created" event from aws.s3 (as an API destination posts it). Its
 * key is as stored, not URL-encoded. Other events give nothing, so a broad rule costs no scans.
 */
export function objectsOfEventBridge(event: Record<string, unknown>): ObjectRef[] {
  if (event.source !== 'aws.s3' || event['detail-type'] !== 'Object Created') return [];
  const size = field(event, 'detail', 'object', 'size');
  return [
    {
      bucket: requireString(event, 'EventBridge event', 'detail', 'bucket', 'name'),
      key: requireString(event, 'EventBridge event', 'detail', 'object', 'key'),
      etag: optionalString(event, 'detail', 'object', 'etag'),
      versionId: optionalString(event, 'detail', 'object', 'version-id'),
      ...(typeof size === 'number' ? { size } : {}),
    },
  ];
}
