import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CreateBucketCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeService, type NodeService } from '../../../src/server/service.ts';
import { S3Store } from '../../../src/service/storage/s3.ts';
import { FaultProxy } from '../../helpers/fault-proxy.ts';
import { startMoto } from '../../helpers/moto.ts';
import { CERT_URL, makeSigningCert, s3Event, snsNotification, TOPIC } from '../../helpers/sns.ts';
import { reportSchemaErrors } from '../../helpers/schema.ts';
import { TEST_SCAN_ENV } from '../../helpers/scan-bounds.ts';
import { trustedSample } from '../../helpers/sample.ts';

// The Node service on S3: moto's S3-protocol server on 127.0.0.1 (it enforces If-None-Match), reached
// through a TCP proxy that injects 5xx answers, stalls and cut connections. Deliveries come as SNS,
// EventBridge and MinIO would send them.

const BUCKET = 'models';
const creds = { accessKeyId: 'test', secretAccessKey: 'test' };
let moto: { endpoint: string; stop: () => void };
let proxy: FaultProxy;
let direct: S3Client;
let dir: string;
let cert: { keyPem: string; certPem: string };
const services: NodeService[] = [];
const events: { worker: number; id: string; status: string; verdict: string | null }[] = [];
const retries: string[] = [];

function service(n: number, extra: Record<string, string> = {}): NodeService {
  const svc = createNodeService({
    env: {
      STORAGE: 's3',
      S3_ENDPOINT: `http://127.0.0.1:${proxy.port}`,
      S3_FORCE_PATH_STYLE: 'true',
      S3_REQUEST_TIMEOUT_MS: '1500',
      AWS_ACCESS_KEY_ID: creds.accessKeyId,
      AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
      BUCKETS: BUCKET,
      SHAPGUARD_STATE_DB: join(dir, `state-${n}.db`),
      SNS_TOPIC_ARNS: TOPIC,
      MINIO_AUTH_TOKEN: 'minio-token',
      EVENTBRIDGE_API_KEY: 'eb-key',
      ...TEST_SCAN_ENV,
      RETRY_BASE_SECONDS: '0.2',
      NOT_READY_DELAY_SECONDS: '0.5',
      LEASE_SECONDS: '600',
      ...extra,
    },
    fetchCert: async (url) => (url === CERT_URL ? cert.certPem : Promise.reject(new Error('unexpected certificate URL'))),
    events: {
      onDone: (id, verdict, status) => events.push({ worker: n, id, verdict, status }),
      onRetry: (_id, _a, error) => retries.push(error),
    },
  });
  services.push(svc);
  svc.runner.start();
  return svc;
}

async function upload(key: string, file: string, tags: Record<string, string> = {}): Promise<string> {
  const tagging = new URLSearchParams(tags).toString();
  await direct.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: readFileSync(file), ...(tagging ? { Tagging: tagging } : {}) }));
  return (await direct.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))).ETag!;
}
const keysUnder = async (prefix: string) =>
  ((await direct.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }))).Contents ?? []).map((o) => o.Key!);
const tagsOf = async (key: string) =>
  Object.fromEntries(
    ((await direct.send(new GetObjectTaggingCommand({ Bucket: BUCKET, Key: key }))).TagSet ?? []).map((t) => [t.Key, t.Value]),
  );
const json = async (key: string) =>
  JSON.parse(await (await direct.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body!.transformToString());
const settle = async (...svcs: NodeService[]) => {
  await new Promise((r) => setTimeout(r, 50));
  for (let i = 0; i < 3; i++) for (const s of svcs) await s.runner.idle();
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sg-s3-'));
  cert = makeSigningCert(dir);
  moto = await startMoto();
  const url = new URL(moto.endpoint);
  proxy = new FaultProxy({ host: url.hostname, port: Number(url.port) });
  await proxy.listen();
  direct = new S3Client({ endpoint: moto.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: creds });
  await direct.send(new CreateBucketCommand({ Bucket: BUCKET }));
}, 60_000);

afterAll(() => {
  for (const s of services) s.close();
  proxy?.close();
  moto?.stop();
});

describe('S3 through SNS, EventBridge and MinIO', () => {
  const key = 'team a/mnist-badnets.h5';
  let etag: string;
  let svc: NodeService;

  beforeAll(async () => {
    // A trusted sample beside the model (CLEAN_SAMPLES): this scan is few-shot, its sample read from S3.
    for (const f of await trustedSample('mnist', 10))
      await direct.send(new PutObjectCommand({ Bucket: BUCKET, Key: `samples/mnist/${f.path}`, Body: f.bytes }));
    etag = await upload(key, 'test/fixtures/keras/mnist-badnets.h5', { owner: 'ml-team', stage: 'candidate' });
    svc = service(1, { CLEAN_SAMPLES: 'team a/=samples/mnist/' });
    const res = await svc.app.request('/webhooks/sns', {
      method: 'POST',
      body: snsNotification(cert.keyPem, s3Event(BUCKET, key, etag)),
      headers: { 'content-type': 'text/plain' },
    });
    expect(res.status).toBe(202);
    await settle(svc);
  }, 900_000);

  it('writes the repaired .h5, the report and verdict.json under the output prefix; the original keeps its ETag', async () => {
    const folder = `shapguard/${key}/${etag.replace(/"/g, '')}/`;
    expect((await keysUnder(folder)).sort()).toEqual([
      `${folder}repaired/mnist-badnets.h5`,
      `${folder}report.html`,
      `${folder}report.json`,
      `${folder}verdict.json`,
    ]);
    const report = await json(`${folder}report.json`);
    expect(reportSchemaErrors(report)).toEqual([]);
    expect(report.verdict).toBe('backdoor');
    expect(report.input.format).toBe('keras-h5');
    expect((await direct.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))).ETag).toBe(etag);
    expect(report.mode).toBe('few-shot');
    expect(report.sample.perClass).toEqual(Array(10).fill(10));
    expect(report.repair.check.heldBack.images).toBe(30);
  });

  it('tags the original not deployable, keeping the tags it had, and only the certified repaired copy deployable', async () => {
    const folder = `shapguard/${key}/${etag.replace(/"/g, '')}/`;
    const tags = await tagsOf(key);
    expect(tags).toMatchObject({
      owner: 'ml-team',
      stage: 'candidate',
      'shapguard-verdict': 'backdoor',
      'shapguard-deployable': 'false',
      'shapguard-ship': 'repaired',
    });
    expect(tags['shapguard-report']).toBe(`${folder}report.json`);
    expect(tags['shapguard-version']).toMatch(/^\d+\.\d+\.\d+/);
    expect(await tagsOf(`${folder}repaired/mnist-badnets.h5`)).toMatchObject({
      'shapguard-verdict': 'repaired',
      'shapguard-deployable': 'true',
      'shapguard-report': `${folder}report.json`,
    });
    expect(await json(`${folder}verdict.json`)).toMatchObject({
      verdict: 'backdoor',
      deployable: false,
      ship: 'repaired',
      repaired: [`${folder}repaired/mnist-badnets.h5`],
    });
  });

  it('a later EventBridge and MinIO delivery of the same upload scans nothing again', async () => {
    const eb = JSON.stringify({
      version: '0',
      id: 'ev-1',
      'detail-type': 'Object Created',
      source: 'aws.s3',
      detail: { bucket: { name: BUCKET }, object: { key, size: 1, etag: etag.replace(/"/g, '') } },
    });
    expect(
      (await svc.app.request('/webhooks/eventbridge', { method: 'POST', body: eb, headers: { 'x-shapguard-api-key': 'eb-key' } })).status,
    ).toBe(202);
    const minio = JSON.stringify({
      EventName: 's3:ObjectCreated:Put',
      Key: `${BUCKET}/${key}`,
      Records: JSON.parse(s3Event(BUCKET, key, etag)).Records,
    });
    expect(
      (await svc.app.request('/webhooks/minio', { method: 'POST', body: minio, headers: { authorization: 'Bearer minio-token' } })).status,
    ).toBe(202);
    await settle(svc);
    expect(events.filter((e) => e.status === 'scanned')).toHaveLength(1);
    expect(events.filter((e) => e.status === 'already-scanned').length).toBeGreaterThanOrEqual(1);
  });
});

describe('faults and concurrency', () => {
  it('storage faults (5xx past the S3 client retries, a stalled PUT, a cut PUT) are retried: one complete set of outputs', async () => {
    const key = 'clean/mnist-clean-1.h5';
    const userTags = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`t${i}`, `v${i}`]));
    const etag = await upload(key, 'test/fixtures/keras/mnist-clean-1.h5', userTags);
    const folder = `shapguard/${key}/${etag.replace(/"/g, '')}/`;
    const before = events.length;
    // Four 503s exhaust the S3 client's own three attempts on the model read: the job is retried.
    for (let i = 0; i < 4; i++) proxy.inject({ kind: 'http-503' }, (head) => head.startsWith(`GET /${BUCKET}/clean/`));
    // A stalled PUT of the verdict mark, and a connection cut in the middle of writing the report.
    proxy.inject({ kind: 'stall' }, (head) => head.startsWith('PUT ') && head.includes('verdict.json'));
    proxy.inject({ kind: 'cut-request', afterBytes: 300 }, (head) => head.startsWith('PUT ') && head.includes('report.json'));
    const a = service(2);
    const res = await a.app.request('/webhooks/sns', {
      method: 'POST',
      body: snsNotification(cert.keyPem, s3Event(BUCKET, key, etag)),
      headers: {},
    });
    expect(res.status).toBe(202);
    await settle(a);
    expect(proxy.pending()).toBe(0);
    expect(
      retries.some((r) => /TransientError: S3 GET clean\/mnist-clean-1\.h5 failed/.test(r)),
      retries.join('\n'),
    ).toBe(true);
    expect(events.slice(before).map((e) => e.status)).toEqual(['scanned']);
    expect((await keysUnder(folder)).sort()).toEqual([`${folder}report.html`, `${folder}report.json`, `${folder}verdict.json`]);
    expect((await json(`${folder}report.json`)).verdict).toBe('clean');
    expect(reportSchemaErrors(await json(`${folder}report.json`))).toEqual([]);
    expect(await json(`${folder}verdict.json`)).toMatchObject({ verdict: 'clean', deployable: true, ship: 'original' });
    // Nine user tags + three of ours would pass S3's ten: the user's tags are kept, ours left off.
    expect(await tagsOf(key)).toEqual(userTags);
    expect((await direct.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))).ETag).toBe(etag);
  }, 900_000);

  it('two workers given the same upload at once scan it once (lease, create-only report)', async () => {
    const key = 'race/mnist-clean-1.h5';
    const etag = await upload(key, 'test/fixtures/keras/mnist-clean-1.h5');
    const before = events.length;
    const [a, b] = [service(3), service(4)];
    const body = snsNotification(cert.keyPem, s3Event(BUCKET, key, etag));
    const answers = await Promise.all([a, b].map((s) => s.app.request('/webhooks/sns', { method: 'POST', body, headers: {} })));
    expect(answers.map((r) => r.status)).toEqual([202, 202]);
    await settle(a, b);
    // The second either finds the first one's live lease (busy) or, later, its report (already-scanned).
    const mine = events.slice(before).map((e) => e.status);
    expect(mine.filter((s) => s === 'scanned')).toHaveLength(1);
    expect(mine.filter((s) => s === 'busy' || s === 'already-scanned')).toHaveLength(1);
    expect((await json(`shapguard/${key}/${etag.replace(/"/g, '')}/report.json`)).verdict).toBe('clean');
  }, 900_000);

  it('a job that keeps failing is dead-lettered after MAX_ATTEMPTS and leaves an "error" report and mark', async () => {
    const key = 'dead/mnist-clean-1.h5';
    const etag = await upload(key, 'test/fixtures/keras/mnist-clean-1.h5');
    // Every read of the model fails: 2 job attempts × 3 client attempts.
    for (let i = 0; i < 6; i++) proxy.inject({ kind: 'http-503' }, (head) => head.startsWith(`GET /${BUCKET}/dead/`));
    const dead: string[] = [];
    const svc = createNodeService({
      env: {
        STORAGE: 's3',
        S3_ENDPOINT: `http://127.0.0.1:${proxy.port}`,
        S3_FORCE_PATH_STYLE: 'true',
        AWS_ACCESS_KEY_ID: creds.accessKeyId,
        AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
        BUCKETS: BUCKET,
        SHAPGUARD_STATE_DB: join(dir, 'state-dead.db'),
        SNS_TOPIC_ARNS: TOPIC,
        MAX_ATTEMPTS: '2',
        RETRY_BASE_SECONDS: '0.1',
      },
      fetchCert: async () => cert.certPem,
      events: { onDead: (id, attempt, error) => dead.push(`${attempt}:${error}`) },
    });
    services.push(svc);
    svc.runner.start();
    expect(
      (
        await svc.app.request('/webhooks/sns', {
          method: 'POST',
          body: snsNotification(cert.keyPem, s3Event(BUCKET, key, etag)),
          headers: {},
        })
      ).status,
    ).toBe(202);
    await settle(svc);
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatch(/^2:TransientError: S3 GET dead\/mnist-clean-1\.h5 failed/);
    expect(svc.state.counts()).toMatchObject({ dead: 1 });
    const folder = `shapguard/${key}/${etag.replace(/"/g, '')}/`;
    const report = await json(`${folder}report.json`);
    expect(reportSchemaErrors(report)).toEqual([]);
    expect(report.verdict).toBe('error');
    expect(report.reason).toMatch(/gave up after 2 attempts/);
    expect(await json(`${folder}verdict.json`)).toMatchObject({ verdict: 'error', deployable: false, ship: 'nothing', repaired: [] });
    expect((await tagsOf(key))['shapguard-verdict']).toBe('error');
  }, 120_000);

  it('create-only writes are refused by the server when the key exists', async () => {
    const store = new S3Store(direct, BUCKET);
    expect(await store.put('probe/create-only', 'first', { createOnly: true })).toBe(true);
    expect(await store.put('probe/create-only', 'second', { createOnly: true })).toBe(false);
    expect(new TextDecoder().decode((await store.get('probe/create-only'))!.body)).toBe('first');
  });
});
