import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createNodeService, type NodeService } from '../../src/server/service.ts';
import { makeSigningCert, signSns } from '../helpers/sns.ts';
import { newWhsec, standardHeaders } from '../helpers/webhooks.ts';

// The recorded sample payloads in webhooks/ replayed through the webhook routes: each must turn into the
// scan job of the object it names (keys decoded the way each provider encodes them).

const recorded = (path: string) => readFileSync(join('webhooks', path), 'utf8');
const secret = newWhsec();
let svc: NodeService;
let keyPem: string;
let certPem: string;
const confirmed: string[] = [];

function jobOf(id: string): { object: Record<string, unknown>; via: string } {
  const row = svc.state.db.prepare('SELECT message FROM jobs WHERE id = ?').get(id) as { message: string };
  return JSON.parse(row.message);
}

async function replay(path: string, body: string, headers: Record<string, string>) {
  const res = await svc.app.request(path, { method: 'POST', body, headers });
  expect(res.status, await res.clone().text()).toBe(202);
  return jobOf(((await res.json()) as { jobs: string[] }).jobs[0]!);
}

beforeAll(() => {
  const dir = mkdtempSync(join(tmpdir(), 'sg-rec-'));
  ({ keyPem, certPem } = makeSigningCert(dir));
  svc = createNodeService({
    env: {
      SHAPGUARD_DATA_DIR: join(dir, 'b'),
      SHAPGUARD_STATE_DB: join(dir, 's.db'),
      STANDARD_WEBHOOK_SECRETS: secret,
      MINIO_AUTH_TOKEN: 'm',
      EVENTBRIDGE_API_KEY: 'e',
      SNS_TOPIC_ARNS: 'arn:aws:sns:us-east-1:123456789012:model-uploads',
    },
    fetchCert: async () => certPem,
    confirmSubscription: async (url) => void confirmed.push(url),
  });
});

describe('recorded payloads', () => {
  it('s3-sns/notification.json (re-signed with a test certificate)', async () => {
    const signed = signSns(JSON.parse(recorded('s3-sns/notification.json')), keyPem);
    const job = await replay('/webhooks/sns', JSON.stringify(signed), {
      'content-type': 'text/plain',
      'x-amz-sns-message-type': 'Notification',
    });
    expect(job).toMatchObject({
      via: 'sns',
      object: {
        bucket: 'models',
        key: 'team a/classifier v2.h5',
        etag: 'd41d8cd98f00b204e9800998ecf8427e',
        versionId: '096fKKXTRTtl3on89fVO.nfljtsv6qko',
      },
    });
  });

  it('s3-sns/subscription-confirmation.json confirms through its SubscribeURL', async () => {
    const m = JSON.parse(recorded('s3-sns/subscription-confirmation.json'));
    const res = await svc.app.request('/webhooks/sns', { method: 'POST', body: JSON.stringify(signSns(m, keyPem)), headers: {} });
    expect(res.status).toBe(200);
    expect(confirmed).toEqual([m.SubscribeURL]);
  });

  it('s3-eventbridge/object-created.json', async () => {
    const job = await replay('/webhooks/eventbridge', recorded('s3-eventbridge/object-created.json'), { 'x-shapguard-api-key': 'e' });
    expect(job).toMatchObject({
      via: 'eventbridge',
      object: { bucket: 'models', key: 'team a/classifier v2.keras', etag: 'b1946ac92492d2347c6235b4d2611184' },
    });
  });

  it('minio/put.json', async () => {
    const job = await replay('/webhooks/minio', recorded('minio/put.json'), { authorization: 'Bearer m' });
    expect(job).toMatchObject({
      via: 'minio',
      object: { bucket: 'models', key: 'team a/model.json', etag: '074a6521aeeea4914c9e93bb8af848ae' },
    });
  });

  it('standard-webhooks/model-uploaded.json', async () => {
    const body = recorded('standard-webhooks/model-uploaded.json');
    const job = await replay('/webhooks/standard', body, standardHeaders(secret, 'msg_rec', body));
    expect(job).toMatchObject({
      via: 'standard',
      object: { bucket: 'models', key: 'registry/resnet-tiny/1/model.json', etag: '9b2cf535f27731c974343645a3985328' },
    });
  });
});
