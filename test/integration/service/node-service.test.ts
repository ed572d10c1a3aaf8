import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeService, type NodeService } from '../../../src/server/service.ts';
import type { ScanReport } from '../../../src/core/output/report.ts';
import { accuracy, attackSuccessRate } from '../../data/evaluate.ts';
import { loadModelFromDisk } from '../../data/load-dir.ts';
import { heldOut, manifest, MODELS } from '../../helpers/fixtures.ts';
import { reportSchemaErrors } from '../../helpers/schema.ts';
import { sampleDir } from '../../helpers/sample.ts';
import { TEST_SCAN_ENV } from '../../helpers/scan-bounds.ts';
import { createServer, type Server } from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { modelUploaded, newWhsec, signStandard, standardHeaders } from '../../helpers/webhooks.ts';

// The Node service end to end on its embedded default (a local bucket folder and the SQLite queue):
// webhook → queue → scan → outputs and verdict mark, judged on real MNIST with the really planted trigger.

const secret = newWhsec();
const callbackSecret = newWhsec();
const signing = generateKeyPairSync('ed25519', {
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
});
/** A receiver of our signed scan.completed callbacks; its first answer about clean.h5 is a 503 (the job must call again). */
const callbacks: { headers: Record<string, string | string[] | undefined>; body: string; answered: number }[] = [];
let receiver: Server;
const fx = manifest().find((m) => m.name === 'mnist-badnets')!;
let dir: string;
let bucketDir: string;
let svc: NodeService;
const done: { id: string; verdict: string | null; status: string }[] = [];
const retries: string[] = [];

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
let delivery = 0;
function deliver(key: string) {
  const body = modelUploaded('models', key);
  return svc.app.request('/webhooks/standard', { method: 'POST', body, headers: standardHeaders(secret, `msg_${++delivery}`, body) });
}

beforeAll(async () => {
  receiver = createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    const answered = body.includes('"key":"clean.h5"') && !callbacks.some((c) => c.body.includes('"key":"clean.h5"')) ? 503 : 204;
    callbacks.push({ headers: req.headers, body, answered });
    res.writeHead(answered).end();
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  dir = mkdtempSync(join(tmpdir(), 'sg-node-'));
  bucketDir = join(dir, 'buckets', 'models');
  // The uploads/mnist/ models are scanned few-shot, with a trusted sample in the same bucket.
  cpSync(await sampleDir('mnist'), join(bucketDir, 'samples/mnist'), { recursive: true });
  svc = createNodeService({
    env: {
      SHAPGUARD_DATA_DIR: join(dir, 'buckets'),
      SHAPGUARD_STATE_DB: join(dir, 'state.db'),
      STANDARD_WEBHOOK_SECRETS: secret,
      SHAPGUARD_API_TOKEN: 't',
      ...TEST_SCAN_ENV,
      NOT_READY_DELAY_SECONDS: '0.2',
      RETRY_BASE_SECONDS: '0.2',
      BUCKETS: 'models',
      CLEAN_SAMPLES: 'uploads/mnist/=samples/mnist/',
      CALLBACK_URLS: `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hooks/shapguard`,
      CALLBACK_SECRET: callbackSecret,
      SHAPGUARD_SIGNING_KEY: signing.privateKey,
    },
    events: { onDone: (id, verdict, status) => done.push({ id, verdict, status }), onRetry: (_id, _a, error) => retries.push(error) },
  });
  svc.runner.start();
});
afterAll(() => {
  svc.close();
  receiver.close();
});

describe('a tfjs model uploaded shard after model.json', () => {
  const src = join(MODELS, 'mnist-badnets');
  let folder: string;
  let originals: Record<string, string>;

  beforeAll(async () => {
    mkdirSync(join(bucketDir, 'uploads/mnist'), { recursive: true });
    copyFileSync(join(src, 'model.json'), join(bucketDir, 'uploads/mnist/model.json'));
    expect((await deliver('uploads/mnist/model.json')).status).toBe(202);
    // The job waits for the shard: retried, never scanned half.
    for (let i = 0; i < 100 && retries.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    copyFileSync(join(src, 'group1-shard1of1.bin'), join(bucketDir, 'uploads/mnist/group1-shard1of1.bin'));
    originals = { json: sha(join(bucketDir, 'uploads/mnist/model.json')), bin: sha(join(bucketDir, 'uploads/mnist/group1-shard1of1.bin')) };
    // The shard's own event re-scans its model.json.
    expect((await deliver('uploads/mnist/group1-shard1of1.bin')).status).toBe(202);
    await svc.runner.idle();
    const versions = readdirSync(join(bucketDir, 'shapguard/uploads/mnist/model.json'));
    expect(versions).toHaveLength(1);
    folder = join(bucketDir, 'shapguard/uploads/mnist/model.json', versions[0]!);
  }, 900_000);

  it('waited for the missing shard instead of scanning without it', () => {
    expect(retries[0]).toMatch(/group1-shard1of1\.bin is not uploaded yet/);
  });

  it('scanned once, wrote a schema-valid report, the repaired model and the verdict mark; the upload is untouched', () => {
    expect(done.filter((d) => d.status === 'scanned')).toHaveLength(1);
    const report = JSON.parse(readFileSync(join(folder, 'report.json'), 'utf8')) as ScanReport;
    expect(reportSchemaErrors(report)).toEqual([]);
    expect(report.verdict).toBe('backdoor');
    expect(report.detection!.flagged).toContain(fx.attack!.target);
    expect(report.mode).toBe('few-shot');
    expect(report.sample!.images).toBe(100);
    expect(readdirSync(join(folder, 'repaired')).sort()).toEqual(['group1-shard1of1.bin', 'model.json']);
    const mark = JSON.parse(readFileSync(join(folder, 'verdict.json'), 'utf8'));
    expect(mark).toMatchObject({
      verdict: 'backdoor',
      deployable: false,
      ship: report.repair!.status === 'repaired' ? 'repaired' : 'nothing',
      bucket: 'models',
      key: 'uploads/mnist/model.json',
    });
    expect(existsSync(join(folder, '.lease'))).toBe(false);
    expect(sha(join(bucketDir, 'uploads/mnist/model.json'))).toBe(originals.json);
    expect(sha(join(bucketDir, 'uploads/mnist/group1-shard1of1.bin'))).toBe(originals.bin);
  });

  it('the repaired model written back removes the real backdoor on held-out MNIST and keeps accuracy', async () => {
    const test = heldOut('mnist');
    const model = await loadModelFromDisk(join(folder, 'repaired/model.json'));
    expect(attackSuccessRate(model, test, fx.attack!.trigger, fx.attack!.target)).toBeLessThan(0.1);
    expect(accuracy(model, test)).toBeGreaterThan(fx.accuracy - 0.02);
  });

  it('later deliveries for the same upload, concurrent or not, scan nothing again', async () => {
    const before = readFileSync(join(folder, 'report.json'));
    const answers = await Promise.all([deliver('uploads/mnist/model.json'), deliver('uploads/mnist/model.json')]);
    expect(answers.map((a) => a.status)).toEqual([202, 202]);
    await new Promise((r) => setTimeout(r, 50));
    await svc.runner.idle();
    expect(done.filter((d) => d.status === 'scanned')).toHaveLength(1);
    expect(done.at(-1)!.status).toBe('already-scanned');
    expect(readFileSync(join(folder, 'report.json')).equals(before)).toBe(true);
  });

  it('sends a Standard-Webhooks-signed scan.completed callback, with one id however often it is resent', () => {
    const mine = callbacks.filter((c) => c.body.includes('"key":"uploads/mnist/model.json"'));
    expect(mine.length).toBeGreaterThanOrEqual(1);
    expect(new Set(mine.map((c) => c.headers['webhook-id'])).size).toBe(1);
    const [first] = mine;
    const { type, data } = JSON.parse(first!.body) as { type: string; data: { verdict: string; key: string } };
    expect(type).toBe('scan.completed');
    expect(data).toMatchObject({ verdict: 'backdoor', key: 'uploads/mnist/model.json' });
    expect(first!.headers['webhook-signature']).toBe(
      signStandard(callbackSecret, String(first!.headers['webhook-id']), Number(first!.headers['webhook-timestamp']), first!.body),
    );
  });

  it('signs an attestation beside the report: `shapguard verify` checks it, refuses the backdoored upload and passes only a certified repair', () => {
    writeFileSync(join(dir, 'public.pem'), signing.publicKey);
    const verify = (model: string, report: string, ...more: string[]) =>
      spawnSync(
        process.execPath,
        [
          'dist/cli.mjs',
          'verify',
          join(folder, 'attestation.dsse.json'),
          '--key',
          join(dir, 'public.pem'),
          '--model',
          model,
          '--report',
          report,
          ...more,
        ],
        { encoding: 'utf8' },
      );
    const upload = join(bucketDir, 'uploads/mnist/model.json');
    const reportPath = join(folder, 'report.json');
    const intact = verify(upload, reportPath, '--integrity-only');
    expect(intact.status, intact.stderr + intact.stdout).toBe(0);
    const shipped = verify(upload, reportPath);
    expect(shipped.status).toBe(1);
    expect(shipped.stdout + shipped.stderr).toMatch(
      /model matches, report matches; the scan's result is FAILED: this model is not to be shipped/,
    );
    const certified = (JSON.parse(readFileSync(reportPath, 'utf8')) as ScanReport).repair!.status === 'repaired';
    expect(verify(join(folder, 'repaired/model.json'), reportPath).status).toBe(certified ? 0 : 1);
    writeFileSync(join(dir, 'tampered.json'), readFileSync(reportPath, 'utf8').replace('"backdoor"', '"clean"'));
    expect(verify(upload, join(dir, 'tampered.json'), '--integrity-only').status).not.toBe(0);
  });

  it('answers the status API with the outputs', async () => {
    const res = await svc.app.request('/v1/scans?bucket=models&key=uploads/mnist/model.json', { headers: { authorization: 'Bearer t' } });
    const { scans } = (await res.json()) as { scans: { state: string; verdict: string; outputs: { report: string; ship: string } }[] };
    expect(scans.length).toBeGreaterThan(0);
    expect(scans.every((s) => s.state === 'done' && s.verdict === 'backdoor')).toBe(true);
    const { ship } = JSON.parse(readFileSync(join(folder, 'verdict.json'), 'utf8')) as { ship: string };
    expect(scans.map((s) => s.outputs.ship)).toEqual(scans.map(() => ship));
    expect(existsSync(join(bucketDir, scans[0]!.outputs.report))).toBe(true);
  });
});

describe('a clean Keras .h5 model', () => {
  it('is marked clean and deployable, with no repaired copy', async () => {
    copyFileSync(join('test/fixtures/keras', 'mnist-clean-1.h5'), join(bucketDir, 'clean.h5'));
    const before = sha(join(bucketDir, 'clean.h5'));
    expect((await deliver('clean.h5')).status).toBe(202);
    await new Promise((r) => setTimeout(r, 50));
    await svc.runner.idle();
    const [version] = readdirSync(join(bucketDir, 'shapguard/clean.h5'));
    const folder = join(bucketDir, 'shapguard/clean.h5', version!);
    expect(version).toBe(
      createHash('md5')
        .update(readFileSync(join(bucketDir, 'clean.h5')))
        .digest('hex'),
    );
    const report = JSON.parse(readFileSync(join(folder, 'report.json'), 'utf8'));
    expect(reportSchemaErrors(report)).toEqual([]);
    expect(report.verdict).toBe('clean');
    expect(JSON.parse(readFileSync(join(folder, 'verdict.json'), 'utf8'))).toMatchObject({
      verdict: 'clean',
      deployable: true,
      ship: 'original',
      repaired: [],
    });
    expect(existsSync(join(folder, 'repaired'))).toBe(false);
    expect(sha(join(bucketDir, 'clean.h5'))).toBe(before);
    // Its callback failed once (503): the job was retried and called again, with the same id.
    const mine = callbacks.filter((c) => c.body.includes('"key":"clean.h5"'));
    expect(mine.map((c) => c.answered)).toEqual([503, 204]);
    expect(mine[0]!.headers['webhook-id']).toBe(mine[1]!.headers['webhook-id']);
  }, 900_000);
});

describe('the status API over every scan', () => {
  const get = async (query: string) => {
    const res = await svc.app.request(`/v1/scans${query}`, { headers: { authorization: 'Bearer t' } });
    return {
      status: res.status,
      body: (await res.json()) as {
        scans: { id: string; receivedAt: string; via: string }[];
        next: string | null;
        error?: { code: string };
      },
    };
  };

  it('lists the most recent scans, newest first, a page at a time', async () => {
    const seen: { id: string; receivedAt: string }[] = [];
    let page = await get('?limit=1');
    for (let i = 0; i < 20; i++) {
      expect(page.status).toBe(200);
      expect(page.body.scans.length).toBeLessThanOrEqual(1);
      seen.push(...page.body.scans);
      if (page.body.next === null) break;
      page = await get(`?limit=1&cursor=${encodeURIComponent(page.body.next)}`);
    }
    const all = (await get('')).body.scans;
    expect(all.length).toBeGreaterThanOrEqual(2);
    expect(seen.map((s) => s.id)).toEqual(all.map((s) => s.id));
    expect(new Set(seen.map((s) => s.id)).size).toBe(seen.length);
    expect([...seen].sort((a, b) => b.receivedAt.localeCompare(a.receivedAt))).toEqual(seen);
    // The listing carries the same records as the per-object query.
    const clean = (await get('?bucket=models&key=clean.h5')).body.scans[0]!;
    expect(all.find((s) => s.id === clean.id)).toEqual(clean);
  });

  it('refuses a page it cannot serve, with a reason', async () => {
    for (const query of ['?limit=0', '?limit=101', '?limit=two', '?cursor=nonsense', '?bucket=models']) {
      const { status, body } = await get(query);
      expect(status, query).toBe(400);
      expect(body.error?.code, query).toBe('bad-query');
    }
  });

  it('POST /v1/scans for a job a webhook queued keeps how and when it first came', async () => {
    const before = (await get('?bucket=models&key=clean.h5')).body.scans[0]!;
    expect(before.via).toBe('standard');
    const res = await svc.app.request('/v1/scans', {
      method: 'POST',
      body: JSON.stringify({ bucket: 'models', key: 'clean.h5' }),
      headers: { authorization: 'Bearer t', 'content-type': 'application/json' },
    });
    expect(res.status).toBe(202);
    expect(((await res.json()) as { jobs: string[] }).jobs).toEqual([before.id]);
    await new Promise((r) => setTimeout(r, 50));
    await svc.runner.idle();
    const after = (await get('?bucket=models&key=clean.h5')).body.scans;
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject({ id: before.id, via: 'standard', receivedAt: before.receivedAt, state: 'done' });
  }, 300_000);
});
