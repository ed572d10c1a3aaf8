import { createMessageBatch, env, getQueueResult, createExecutionContext } from 'cloudflare:test';
import { GetObjectCommand, GetObjectTaggingCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { expect, it } from 'vitest';
import worker from '../../src/cloudflare/index.ts';

// The Worker on an S3 bucket: @aws-sdk/client-s3 inside workerd (wrangler's xml-builder alias) against
// moto's S3 server, started in Node by global-setup.ts. A job for the bucket → scan → outputs and tags in S3.

it('scans a model in an S3 bucket from workerd and writes outputs and merged tags back', async () => {
  const job = {
    type: 'shapguard.scan',
    id: 'scan_0123456789abcdef01234567',
    object: { bucket: 'models-s3', key: 'uploads/badnets.h5' },
    via: 'api',
    deliveryId: null,
    receivedAt: new Date().toISOString(),
  };
  const batch = createMessageBatch('shapguard-jobs', [{ id: 's3-1', timestamp: new Date(), attempts: 1, body: job }]);
  await worker.queue(batch, env);
  expect((await getQueueResult(batch, createExecutionContext())).explicitAcks).toEqual(['s3-1']);
  const s3 = new S3Client({
    endpoint: env.S3_ENDPOINT as string,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  const keys = (
    (await s3.send(new ListObjectsV2Command({ Bucket: 'models-s3', Prefix: 'shapguard/uploads/badnets.h5/' }))).Contents ?? []
  ).map((o) => o.Key!);
  const folder = keys.find((k) => k.endsWith('/report.json'))!.replace(/report\.json$/, '');
  // Data-free: no repaired model is written (steps.ts, DATA_FREE_UNCERTIFIED); the R2 test writes one, few-shot.
  expect(keys.sort()).toEqual([`${folder}report.html`, `${folder}report.json`, `${folder}verdict.json`]);
  const report = JSON.parse(
    await (
      await s3.send(new GetObjectCommand({ Bucket: 'models-s3', Key: keys.find((k) => k.endsWith('report.json'))! }))
    ).Body!.transformToString(),
  );
  expect(report.verdict).toBe('backdoor');
  const tags = Object.fromEntries(
    ((await s3.send(new GetObjectTaggingCommand({ Bucket: 'models-s3', Key: 'uploads/badnets.h5' }))).TagSet ?? []).map((t) => [
      t.Key,
      t.Value,
    ]),
  );
  expect(tags).toMatchObject({
    owner: 'vision',
    'shapguard-verdict': 'backdoor',
    'shapguard-deployable': 'false',
    'shapguard-ship': 'nothing',
  });
});
