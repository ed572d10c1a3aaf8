import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeService, type NodeService } from '../../../src/server/service.ts';
import { HubStandIn } from '../../helpers/hub-standin.ts';
import { reportSchemaErrors } from '../../helpers/schema.ts';
import { TEST_SCAN_ENV } from '../../helpers/scan-bounds.ts';

// Hugging Face Hub webhooks → the repo's models at the pushed commit, read through a local stand-in of the
// Hub API (test/helpers/hub-standin.ts documents the endpoints) → scanned → outputs in OUTPUT_BUCKET.

const HF_TOKEN = 'hf_standin_read_token';
const SECRET = 'hf-webhook-secret';
const SHA = '8d9c4b0f3e2a1b7c6d5e4f3a2b1c0d9e8f7a6b5c';
const recorded = JSON.parse(readFileSync('webhooks/huggingface/repo-content-update.json', 'utf8'));
let hub: HubStandIn;
let svc: NodeService;
let dir: string;
const done: string[] = [];

const post = (body: unknown, secret = SECRET) =>
  svc.app.request('/webhooks/huggingface', {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json', 'x-webhook-secret': secret },
  });

beforeAll(async () => {
  hub = new HubStandIn(HF_TOKEN);
  await hub.listen();
  const fx = 'test/fixtures/models/mnist-badnets';
  hub.commit(recorded.repo.name, SHA, {
    '.gitattributes': new TextEncoder().encode('*.bin filter=lfs diff=lfs merge=lfs -text\n'),
    'README.md': new TextEncoder().encode('# digits\n'),
    'tfjs/model.json': new Uint8Array(readFileSync(`${fx}/model.json`)),
    'tfjs/group1-shard1of1.bin': new Uint8Array(readFileSync(`${fx}/group1-shard1of1.bin`)),
    // PyTorch's export of a clean CNN: the Hub's most common model file among image classifiers.
    'onnx/model.onnx': new Uint8Array(readFileSync('test/fixtures/onnx/mnist-clean-o17-nofold.onnx')),
  });
  dir = mkdtempSync(join(tmpdir(), 'sg-hf-'));
  svc = createNodeService({
    env: {
      SHAPGUARD_DATA_DIR: join(dir, 'b'),
      SHAPGUARD_STATE_DB: join(dir, 's.db'),
      BUCKETS: 'scans',
      OUTPUT_BUCKET: 'scans',
      HF_WEBHOOK_SECRET: SECRET,
      HF_TOKEN,
      HF_ENDPOINT: hub.endpoint,
      HF_DISCUSSIONS: 'true',
      ...TEST_SCAN_ENV,
    },
    events: { onDone: (id, verdict, status) => done.push(`${status}:${verdict}`) },
  });
  svc.runner.start();
});
afterAll(() => {
  svc.close();
  hub.close();
});

describe('Hugging Face webhooks', () => {
  it('reject a wrong or missing X-Webhook-Secret and a repo id that is not one', async () => {
    expect((await post(recorded, 'nope')).status).toBe(401);
    expect((await svc.app.request('/webhooks/huggingface', { method: 'POST', body: JSON.stringify(recorded) })).status).toBe(401);
    expect((await post({ ...recorded, repo: { ...recorded.repo, name: '../../etc' } })).status).toBe(400);
    expect(svc.state.counts().pending ?? 0).toBe(0);
    expect(hub.seen).toEqual([]);
  });

  it('ignore events that are not content updates of a model repo', async () => {
    const discussion = { ...recorded, event: { action: 'create', scope: 'discussion' } };
    expect(await (await post(discussion)).json()).toMatchObject({ accepted: 0 });
    const dataset = { ...recorded, repo: { ...recorded.repo, type: 'dataset' } };
    expect(await (await post(dataset)).json()).toMatchObject({ accepted: 0 });
  });

  it('scan the models of the pushed commit, read with the token, pinned to that commit; outputs go to OUTPUT_BUCKET', async () => {
    const res = await post({ ...recorded, repo: { ...recorded.repo, headSha: SHA } });
    expect(res.status).toBe(202);
    await new Promise((r) => setTimeout(r, 50));
    await svc.runner.idle();
    // One job for the push, its verdict the worst of the commit's models.
    expect(done).toEqual(['scanned:backdoor']);
    const onnxBase = join(dir, 'b/scans/shapguard/huggingface', recorded.repo.name, 'onnx/model.onnx');
    const onnxReport = JSON.parse(readFileSync(join(onnxBase, readdirSync(onnxBase)[0]!, 'report.json'), 'utf8'));
    expect([onnxReport.input.format, onnxReport.verdict]).toEqual(['onnx', 'clean']);
    const base = join(dir, 'b/scans/shapguard/huggingface', recorded.repo.name, 'tfjs/model.json');
    const [version] = readdirSync(base);
    const folder = join(base, version!);
    const report = JSON.parse(readFileSync(join(folder, 'report.json'), 'utf8'));
    expect(reportSchemaErrors(report)).toEqual([]);
    expect(report.verdict).toBe('backdoor');
    // Data-free: detected, not repaired, nothing written but the report and marks (steps.ts, DATA_FREE_UNCERTIFIED).
    expect(report.repair.status).toBe('not-repaired');
    expect(existsSync(join(folder, 'repaired'))).toBe(false);
    expect(JSON.parse(readFileSync(join(folder, 'verdict.json'), 'utf8'))).toMatchObject({
      bucket: `hf:${recorded.repo.name}`,
      key: 'tfjs/model.json',
      deployable: false,
      ship: 'nothing',
      repaired: [],
    });
    expect(existsSync(join(folder, '.lease'))).toBe(false);
    // Every call: authorised, and at the pushed commit, never a branch name.
    expect(hub.seen.length).toBeGreaterThan(3);
    for (const r of hub.seen.filter((s) => !s.path.startsWith('/lfs/') && !s.path.endsWith('/discussions'))) {
      expect(r.authorization).toBe(`Bearer ${HF_TOKEN}`);
      expect(r.path).toContain(SHA);
    }
    expect(
      hub.seen.some(
        (r) => r.method === 'GET' && r.path.startsWith(`/api/models/${recorded.repo.name}/tree/${SHA}`) && r.path.includes('cursor='),
      ),
    ).toBe(true);
    // One HEAD per file: the answers at a pinned commit are remembered.
    expect(
      hub.seen.filter((r) => r.method === 'HEAD' && r.path === `/${recorded.repo.name}/resolve/${SHA}/tfjs/group1-shard1of1.bin`),
    ).toHaveLength(1);
    // Each model's verdict, announced once as a discussion on the repo.
    expect(hub.discussions.map((d) => d.title).sort()).toEqual([
      `shapguard: backdoor (do not ship this model) — tfjs/model.json @ ${SHA.slice(0, 8)}`,
      `shapguard: clean (this model may ship) — onnx/model.onnx @ ${SHA.slice(0, 8)}`,
    ]);
    const tfjs = hub.discussions.find((d) => d.title.includes('tfjs/model.json'))!;
    expect(tfjs).toMatchObject({ repo: recorded.repo.name, pullRequest: false });
    expect(tfjs.description).toContain(SHA);
  });

  it('the same push delivered again scans nothing again', async () => {
    expect((await post({ ...recorded, repo: { ...recorded.repo, headSha: SHA } })).status).toBe(202);
    await new Promise((r) => setTimeout(r, 50));
    await svc.runner.idle();
    expect(done).toEqual(['scanned:backdoor', 'already-scanned:backdoor']);
    expect(hub.discussions).toHaveLength(2);
  });
});
