import { createExecutionContext, env, waitOnExecutionContext } from 'cloudflare:test';
import { expect, it } from 'vitest';
import worker from '../../src/cloudflare/index.ts';

// A signed Standard Webhooks delivery into the Worker's fetch handler inside workerd: answered 202, the
// job sent to the real (Miniflare) Queue, consumed by the same Worker's queue handler, scanned, and the
// outputs written to R2. A replay of the delivery id is refused through the ledger kept in R2.

const SECRET = 'whsec_dGVzdC1zZWNyZXQtZm9yLXdvcmtlcmQtdGVzdHMtb25seQ=='; // the test binding in vitest.config.ts

async function sign(id: string, timestamp: number, body: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    'raw',
    Uint8Array.from(atob(SECRET.slice(6)), (c) => c.charCodeAt(0)),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  );
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(`${id}.${timestamp}.${body}`)));
  return `v1,${btoa(String.fromCharCode(...mac))}`;
}

async function deliver(id: string, body: string): Promise<Response> {
  const ts = Math.floor(Date.now() / 1000);
  const request = new Request('https://shapguard.test/webhooks/standard', {
    method: 'POST',
    body,
    headers: {
      'content-type': 'application/json',
      'webhook-id': id,
      'webhook-timestamp': String(ts),
      'webhook-signature': await sign(id, ts, body),
    },
  });
  const ctx = createExecutionContext();
  const res = await worker.fetch(request as never, env, ctx);
  await waitOnExecutionContext(ctx);
  return res as unknown as Response;
}

it('webhook → 202 → Queue → consumer → scan → outputs in R2; a replayed id queues nothing', async () => {
  await env.MODELS.put(
    'hooks/sample/group1-shard1of1.bin',
    Uint8Array.from(atob(env.FIXTURE_SHARD_B64), (c) => c.charCodeAt(0)),
  );
  const put = await env.MODELS.put('hooks/sample/model.json', env.FIXTURE_MODEL_JSON);
  const body = JSON.stringify({
    type: 'model.uploaded',
    timestamp: new Date().toISOString(),
    data: { bucket: 'shapguard-models', key: 'hooks/sample/model.json', etag: put!.etag },
  });
  const res = await deliver('msg_worker_1', body);
  expect(res.status).toBe(202);
  const { jobs } = (await res.json()) as { jobs: string[] };
  expect(jobs).toHaveLength(1);
  const replay = await deliver('msg_worker_1', body);
  expect(await replay.json()).toMatchObject({ duplicate: true, accepted: 0 });

  let keys: string[] = [];
  for (let i = 0; i < 600 && !keys.some((k) => k.endsWith('/report.json')); i++) {
    await new Promise((r) => setTimeout(r, 250));
    keys = (await env.MODELS.list({ prefix: 'shapguard/hooks/sample/model.json/' })).objects.map((o) => o.key);
  }
  const report = JSON.parse(await (await env.MODELS.get(keys.find((k) => k.endsWith('/report.json'))!))!.text());
  expect(report.verdict).toBe('backdoor');
  // Data-free: the candidate prune is in the report, and no repaired model is written (steps.ts, DATA_FREE_UNCERTIFIED).
  expect(report.repair.status).toBe('not-repaired');
  expect(report.repair.reason).toMatch(/^data-free scans do not certify repairs/);
  expect(keys.filter((k) => k.includes('/repaired/'))).toHaveLength(0);
  const status = await worker.fetch(
    new Request(`https://shapguard.test/v1/scans/${jobs[0]}`, { headers: { authorization: 'Bearer worker-test-token' } }) as never,
    env,
    createExecutionContext(),
  );
  expect(await status.json()).toMatchObject({ id: jobs[0], state: 'done', verdict: 'backdoor' });
});
