import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { createHandler as CreateHandler, LambdaEvent } from '../../../src/lambda/handler.ts';
import { FaultProxy } from '../../helpers/fault-proxy.ts';
import { startMoto } from '../../helpers/moto.ts';
import { reportSchemaErrors } from '../../helpers/schema.ts';
import { TEST_SCAN_ENV } from '../../helpers/scan-bounds.ts';

// The deployable Lambda bundle (npm run build:lambda → dist/lambda/index.mjs with the .wasm files beside
// it) invoked with the recorded S3 → Lambda and S3 → SQS → Lambda events, on moto's S3 behind the fault proxy.

const creds = { accessKeyId: 'test', secretAccessKey: 'test' };
let moto: { endpoint: string; stop: () => void };
let proxy: FaultProxy;
let direct: S3Client;
let invoke: (event: LambdaEvent) => Promise<{ batchItemFailures: { itemIdentifier: string }[] }>;
const recorded = (name: string) => JSON.parse(readFileSync(join('webhooks/aws-lambda', name), 'utf8')) as LambdaEvent;
const keys = async (prefix: string) =>
  ((await direct.send(new ListObjectsV2Command({ Bucket: 'models', Prefix: prefix }))).Contents ?? []).map((o) => o.Key!);

beforeAll(async () => {
  const built = spawnSync(process.execPath, ['tools/build-lambda.mjs'], { encoding: 'utf8' });
  expect(built.status, built.stderr).toBe(0);
  moto = await startMoto();
  const url = new URL(moto.endpoint);
  proxy = new FaultProxy({ host: url.hostname, port: Number(url.port) });
  await proxy.listen();
  direct = new S3Client({ endpoint: moto.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: creds });
  await direct.send(new CreateBucketCommand({ Bucket: 'models' }));
  await direct.send(
    new PutObjectCommand({ Bucket: 'models', Key: 'lambda/clean model.h5', Body: readFileSync('test/fixtures/keras/mnist-clean-1.h5') }),
  );
  const mod = (await import(pathToFileURL(resolve('dist/lambda/index.mjs')).href)) as { createHandler: typeof CreateHandler };
  invoke = mod.createHandler({
    BUCKETS: 'models',
    S3_ENDPOINT: `http://127.0.0.1:${proxy.port}`,
    S3_FORCE_PATH_STYLE: 'true',
    S3_REQUEST_TIMEOUT_MS: '2000',
    AWS_ACCESS_KEY_ID: creds.accessKeyId,
    AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
    ...TEST_SCAN_ENV,
    RETRY_BASE_SECONDS: '0',
  });
}, 120_000);
afterAll(() => {
  proxy?.close();
  moto?.stop();
});

describe('the Lambda bundle', () => {
  it('scans the object of a recorded S3 → Lambda event and writes the outputs back to S3', async () => {
    expect(await invoke(recorded('s3-put.json'))).toEqual({ batchItemFailures: [] });
    const out = await keys('shapguard/lambda/clean model.h5/');
    expect(out.map((k) => k.slice(k.lastIndexOf('/') + 1)).sort()).toEqual(['report.html', 'report.json', 'verdict.json']);
    const report = JSON.parse(
      await (
        await direct.send(new GetObjectCommand({ Bucket: 'models', Key: out.find((k) => k.endsWith('report.json'))! }))
      ).Body!.transformToString(),
    );
    expect(reportSchemaErrors(report)).toEqual([]);
    expect(report.verdict, report.reason).toBe('clean');
    expect(report.backend).toMatchObject({ name: 'wasm', simd: true });
  }, 900_000);

  it('answers an SQS batch with the failed messages only: a storage fault is retried, a done object acknowledged', async () => {
    const batch = recorded('sqs-batch.json');
    const first = batch.Records[0]!;
    const faulty = { ...first, messageId: 'faulty-1', body: String(first.body).replace('lambda/clean+model.h5', 'lambda/other.h5') };
    await direct.send(
      new PutObjectCommand({ Bucket: 'models', Key: 'lambda/other.h5', Body: readFileSync('test/fixtures/keras/mnist-clean-1.h5') }),
    );
    for (let i = 0; i < 4; i++) proxy.inject({ kind: 'http-503' }, (head) => head.includes('/lambda/other.h5'));
    const res = await invoke({ Records: [first, faulty] });
    expect(res).toEqual({ batchItemFailures: [{ itemIdentifier: 'faulty-1' }] });
    expect(await keys('shapguard/lambda/other.h5/')).toEqual([]);
  }, 900_000);
});
