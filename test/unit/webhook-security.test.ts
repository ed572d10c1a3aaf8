import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createNodeService, type NodeService } from '../../src/server/service.ts';
import { CERT_URL, makeSigningCert, s3Event, signSns, snsNotification, TOPIC } from '../helpers/sns.ts';
import { modelUploaded, newWhsec, signStandard, standardHeaders } from '../helpers/webhooks.ts';

// Every route of the webhook and status API, driven through the Node service with its real SQLite queue
// (the runner is not started, so what a request queued stays visible). The network the service would
// reach (SNS's certificate host, SubscribeURL) is replaced by recorders: CI cannot reach AWS.

const secret = newWhsec();
const oldSecret = newWhsec();
let dir: string;
let svc: NodeService;
let cert: { keyPem: string; certPem: string };
let certFetches: string[];
let confirmations: string[];

const queued = () => svc.state.counts().pending ?? 0;
const post = (path: string, body: string, headers: Record<string, string>) => svc.app.request(path, { method: 'POST', body, headers });

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sg-sec-'));
  cert = makeSigningCert(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeEach(() => {
  svc?.close();
  certFetches = [];
  confirmations = [];
  svc = createNodeService({
    env: {
      SHAPGUARD_DATA_DIR: join(dir, 'buckets'),
      SHAPGUARD_STATE_DB: join(dir, `state-${Math.random().toString(36).slice(2)}.db`),
      STANDARD_WEBHOOK_SECRETS: `${oldSecret} ${secret}`,
      MINIO_AUTH_TOKEN: 'minio-token-123',
      EVENTBRIDGE_API_KEY: 'eb-key-456',
      SNS_TOPIC_ARNS: TOPIC,
      SHAPGUARD_API_TOKEN: 'api-token-789',
      MAX_BODY_BYTES: '4096',
      BUCKETS: 'models',
    },
    fetchCert: async (url) => {
      certFetches.push(url);
      return cert.certPem;
    },
    confirmSubscription: async (url) => {
      confirmations.push(url);
    },
  });
});

describe('Standard Webhooks', () => {
  const body = modelUploaded('models', 'team/a/model.json', '"abc"');

  it('accepts a signed delivery with 202 and a job id, and queues exactly one job', async () => {
    const res = await post('/webhooks/standard', body, standardHeaders(secret, 'msg_1', body));
    expect(res.status).toBe(202);
    const json = (await res.json()) as { jobs: string[] };
    expect(json.jobs[0]).toMatch(/^scan_[0-9a-f]{24}$/);
    expect(queued()).toBe(1);
  });

  it('refuses a replayed id: nothing more is queued', async () => {
    expect((await post('/webhooks/standard', body, standardHeaders(secret, 'msg_2', body))).status).toBe(202);
    const again = await post('/webhooks/standard', body, standardHeaders(secret, 'msg_2', body));
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ accepted: 0, duplicate: true });
    expect(queued()).toBe(1);
  });

  it('answers a reused id naming another object with the first delivery’s jobs, which the status API knows', async () => {
    const first = await post('/webhooks/standard', body, standardHeaders(secret, 'msg_reuse', body));
    const firstJobs = ((await first.json()) as { jobs: string[] }).jobs;
    const other = modelUploaded('models', 'team/b/model.json', '"def"');
    const again = await post('/webhooks/standard', other, standardHeaders(secret, 'msg_reuse', other));
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ accepted: 0, duplicate: true, jobs: firstJobs });
    const auth = { authorization: 'Bearer api-token-789' };
    for (const id of firstJobs) expect((await svc.app.request(`/v1/scans/${id}`, { headers: auth })).status).toBe(200);
    expect(queued()).toBe(1);
  });

  it('refuses at the door what could never be scanned: a key with ".." segments (400), a bucket not in BUCKETS (403); nothing queued', async () => {
    const before = queued();
    for (const [bucket, key, status, code] of [
      ['models', 'team/../../etc/model.json', 400, 'bad-key'],
      ['models', './model.json', 400, 'bad-key'],
      ['elsewhere', 'team/a/model.json', 403, 'unknown-bucket'],
    ] as const) {
      const b = modelUploaded(bucket, key, '"abc"');
      const res = await post('/webhooks/standard', b, standardHeaders(secret, `msg_door_${code}_${key.length}`, b));
      expect(res.status, key).toBe(status);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(code);
    }
    expect(queued()).toBe(before);
  });

  it('accepts any one valid signature of a rotation list, and the old secret while it is configured', async () => {
    const ts = Math.floor(Date.now() / 1000);
    const list = `v1,${Buffer.alloc(32).toString('base64')} ${signStandard(secret, 'msg_3', ts, body)}`;
    const res = await post('/webhooks/standard', body, {
      'webhook-id': 'msg_3',
      'webhook-timestamp': String(ts),
      'webhook-signature': list,
    });
    expect(res.status).toBe(202);
    expect((await post('/webhooks/standard', body, standardHeaders(oldSecret, 'msg_4', body))).status).toBe(202);
  });

  it.each([
    ['a tampered body', (h: Record<string, string>) => ({ headers: h, body: body.replace('team/a', 'team/b') }), 'bad-signature'],
    ['a wrong secret', () => ({ headers: standardHeaders(newWhsec(), 'msg_5', body), body }), 'bad-signature'],
    [
      'a stale timestamp',
      () => ({ headers: standardHeaders(secret, 'msg_5', body, Math.floor(Date.now() / 1000) - 6 * 60), body }),
      'stale-timestamp',
    ],
    [
      'a future timestamp',
      () => ({ headers: standardHeaders(secret, 'msg_5', body, Math.floor(Date.now() / 1000) + 6 * 60), body }),
      'stale-timestamp',
    ],
    ['no signature header', (h: Record<string, string>) => ({ headers: { ...h, 'webhook-signature': '' }, body }), 'missing-signature'],
    [
      'a v2 signature only',
      (h: Record<string, string>) => ({ headers: { ...h, 'webhook-signature': h['webhook-signature']!.replace('v1,', 'v2,') }, body }),
      'bad-signature',
    ],
    [
      'an id changed after signing',
      (h: Record<string, string>) => ({ headers: { ...h, 'webhook-id': 'msg_other' }, body }),
      'bad-signature',
    ],
  ])('rejects %s with 401 and queues nothing', async (_name, make, code) => {
    const { headers, body: sent } = make(standardHeaders(secret, 'msg_5', body));
    const res = await post('/webhooks/standard', sent, headers);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: { code } });
    expect(queued()).toBe(0);
  });

  it('scans only keys under MODEL_PREFIXES when they are set', async () => {
    const scoped = createNodeService({
      env: {
        SHAPGUARD_DATA_DIR: join(dir, 'buckets'),
        SHAPGUARD_STATE_DB: join(dir, 'scoped.db'),
        STANDARD_WEBHOOK_SECRETS: secret,
        MODEL_PREFIXES: 'prod/,staging/',
      },
    });
    try {
      const send = async (key: string, id: string) => {
        const b = modelUploaded('models', key);
        return (await (
          await scoped.app.request('/webhooks/standard', { method: 'POST', body: b, headers: standardHeaders(secret, id, b) })
        ).json()) as { accepted: number };
      };
      expect((await send('prod/m/model.json', 'p1')).accepted).toBe(1);
      expect((await send('scratch/m/model.json', 'p2')).accepted).toBe(0);
    } finally {
      scoped.close();
    }
  });

  it('answers 413 to an oversize body before verifying anything', async () => {
    const big = JSON.stringify({ type: 'model.uploaded', data: { bucket: 'models', key: 'm.h5', pad: 'x'.repeat(5000) } });
    const res = await post('/webhooks/standard', big, standardHeaders(secret, 'msg_6', big));
    expect(res.status).toBe(413);
    expect(queued()).toBe(0);
  });

  it('answers 413 to a streamed body with no Content-Length once it passes the limit', async () => {
    const chunk = new TextEncoder().encode('x'.repeat(1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 64) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const res = await svc.app.request('/webhooks/standard', {
      method: 'POST',
      body: stream,
      headers: standardHeaders(secret, 'msg_stream', ''),
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(sent).toBeLessThan(64);
    expect(queued()).toBe(0);
  });

  it('answers 400 to a signed body that is not JSON, and queues nothing for keys that are not models or are our outputs', async () => {
    expect((await post('/webhooks/standard', 'not json', standardHeaders(secret, 'msg_7', 'not json'))).status).toBe(400);
    for (const [i, key] of ['notes/readme.txt', 'shapguard/team/a/model.json/abc/repaired/model.json'].entries()) {
      const b = modelUploaded('models', key);
      const res = await post('/webhooks/standard', b, standardHeaders(secret, `msg_8${i}`, b));
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ accepted: 0 });
    }
    expect(queued()).toBe(0);
  });
});

describe('token schemes (MinIO, EventBridge)', () => {
  const minioBody = JSON.stringify({
    EventName: 's3:ObjectCreated:Put',
    Key: 'models/dir/my model.h5',
    Records: JSON.parse(s3Event('models', 'dir/my model.h5', 'e1')).Records,
  });

  it('answers MinIO HEAD probes and queues a bearer-authenticated event with the key decoded', async () => {
    expect((await svc.app.request('/webhooks/minio', { method: 'HEAD' })).status).toBe(200);
    const res = await post('/webhooks/minio', minioBody, { authorization: 'Bearer minio-token-123' });
    expect(res.status).toBe(202);
    const id = ((await res.json()) as { jobs: string[] }).jobs[0]!;
    const row = svc.state.db.prepare('SELECT message FROM jobs WHERE id = ?').get(id) as { message: string };
    expect(JSON.parse(row.message).object).toMatchObject({ bucket: 'models', key: 'dir/my model.h5', etag: 'e1' });
  });

  it.each([
    ['/webhooks/minio', {}, 'missing-credentials'],
    ['/webhooks/minio', { authorization: 'Bearer minio-token-12' }, 'bad-credentials'],
    ['/webhooks/minio', { authorization: 'Basic minio-token-123' }, 'missing-credentials'],
    ['/webhooks/eventbridge', { 'x-shapguard-api-key': 'eb-key-45' }, 'bad-credentials'],
    ['/webhooks/eventbridge', {}, 'missing-credentials'],
  ])('%s rejects credentials %j with 401', async (path, headers, code) => {
    const res = await post(path, minioBody, headers as Record<string, string>);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: { code } });
    expect(queued()).toBe(0);
  });

  it('queues an EventBridge Object Created event and ignores other detail types', async () => {
    const event = (detailType: string) =>
      JSON.stringify({
        version: '0',
        id: `ev-${detailType}`,
        'detail-type': detailType,
        source: 'aws.s3',
        detail: { bucket: { name: 'models' }, object: { key: 'x/model.keras', size: 10, etag: 'e2' } },
      });
    expect((await post('/webhooks/eventbridge', event('Object Created'), { 'x-shapguard-api-key': 'eb-key-456' })).status).toBe(202);
    expect((await post('/webhooks/eventbridge', event('Object Deleted'), { 'x-shapguard-api-key': 'eb-key-456' })).status).toBe(200);
    expect(queued()).toBe(1);
  });

  it('keeps a source without a configured secret switched off', async () => {
    const res = await post('/webhooks/huggingface', '{}', {});
    expect(res.status).toBe(404);
  });
});

describe('SNS', () => {
  const event = s3Event('models', 'uploads/model.h5', '"etag-1"');

  it.each(['1', '2'] as const)('accepts a notification signed with SignatureVersion %s', async (version) => {
    const res = await post('/webhooks/sns', snsNotification(cert.keyPem, event, {}, version), {
      'content-type': 'text/plain',
      'x-amz-sns-message-type': 'Notification',
    });
    expect(res.status).toBe(202);
    expect(certFetches).toEqual([CERT_URL]);
  });

  it.each([
    'https://evil.example.com/cert.pem',
    'https://sns.us-east-1.amazonaws.com.evil.example.com/cert.pem',
    'http://sns.us-east-1.amazonaws.com/cert.pem',
    'https://sns.us-east-1.amazonaws.com:8443/cert.pem',
  ])('rejects a certificate URL off SNS (%s) without fetching it', async (url) => {
    const res = await post('/webhooks/sns', snsNotification(cert.keyPem, event, { SigningCertURL: url }), {});
    expect(res.status).toBe(401);
    expect(certFetches).toEqual([]);
    expect(queued()).toBe(0);
  });

  it('rejects a topic off the allow-list with 403, before any fetch', async () => {
    const res = await post(
      '/webhooks/sns',
      snsNotification(cert.keyPem, event, { TopicArn: 'arn:aws:sns:us-east-1:999999999999:other' }),
      {},
    );
    expect(res.status).toBe(403);
    expect(certFetches).toEqual([]);
  });

  it('rejects a tampered message and a replayed MessageId', async () => {
    const signed = JSON.parse(snsNotification(cert.keyPem, event)) as Record<string, string>;
    const tampered = { ...signed, Message: s3Event('models', 'uploads/other.h5', '"etag-2"') };
    expect((await post('/webhooks/sns', JSON.stringify(tampered), {})).status).toBe(401);
    expect((await post('/webhooks/sns', JSON.stringify(signed), {})).status).toBe(202);
    expect(await (await post('/webhooks/sns', JSON.stringify(signed), {})).json()).toMatchObject({ duplicate: true });
    expect(queued()).toBe(1);
  });

  it('confirms a subscription by its SubscribeURL only when that is on an SNS host', async () => {
    const confirm = (subscribeUrl: string) =>
      JSON.stringify(
        signSns(
          {
            Type: 'SubscriptionConfirmation',
            MessageId: 'c1',
            Token: 'tok',
            TopicArn: TOPIC,
            Message: 'confirm',
            SubscribeURL: subscribeUrl,
            Timestamp: new Date().toISOString(),
            SigningCertURL: CERT_URL,
          },
          cert.keyPem,
        ),
      );
    const good = 'https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=x&Token=tok';
    expect((await post('/webhooks/sns', confirm(good), {})).status).toBe(200);
    expect(confirmations).toEqual([good]);
    const res = await post('/webhooks/sns', confirm('https://169.254.169.254/latest/meta-data/'), {});
    expect(res.status).toBe(400);
    expect(confirmations).toEqual([good]);
  });
});

describe('status API', () => {
  it('needs the bearer token, and answers for queued scans by id and by object', async () => {
    expect((await svc.app.request('/v1/scans/scan_000000000000000000000000')).status).toBe(401);
    expect((await svc.app.request('/v1/scans/scan_000000000000000000000000', { headers: { authorization: 'Bearer wrong' } })).status).toBe(
      401,
    );
    const auth = { authorization: 'Bearer api-token-789' };
    expect((await svc.app.request('/v1/scans/scan_000000000000000000000000', { headers: auth })).status).toBe(404);
    const notModel = await post('/v1/scans', JSON.stringify({ bucket: 'models', key: 'a.txt' }), auth);
    expect(notModel.status).toBe(422);
    const res = await post('/v1/scans', JSON.stringify({ bucket: 'models', key: 'm/model.h5' }), auth);
    expect(res.status).toBe(202);
    const id = ((await res.json()) as { jobs: string[] }).jobs[0]!;
    await new Promise((r) => setTimeout(r, 20)); // the queued record is written after the answer
    const byId = await svc.app.request(`/v1/scans/${id}`, { headers: auth });
    expect(await byId.json()).toMatchObject({ id, state: 'queued', object: { bucket: 'models', key: 'm/model.h5' } });
    const byObject = await svc.app.request('/v1/scans?bucket=models&key=m/model.h5', { headers: auth });
    expect(((await byObject.json()) as { scans: { id: string }[] }).scans.map((s) => s.id)).toEqual([id]);
  });
});
