import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeService, type NodeService } from '../../../src/server/service.ts';
import { MlflowStandIn } from '../../helpers/mlflow-standin.ts';
import { signStandard } from '../../helpers/webhooks.ts';
import { reportSchemaErrors } from '../../helpers/schema.ts';
import { TEST_SCAN_ENV } from '../../helpers/scan-bounds.ts';

// MLflow model-registry webhooks → the version's artifacts through a local stand-in of the tracking
// server's REST API → scanned → outputs in OUTPUT_BUCKET and the verdict set as model-version tags.

const SECRET = 'mlflow-webhook-secret';
const TOKEN = 'mlflow-tracking-token';
const recorded = readFileSync('webhooks/mlflow/model-version-created.json', 'utf8');
let mlflow: MlflowStandIn;
let svc: NodeService;
let dir: string;
const done: string[] = [];

function headers(id: string, body: string, timestamp = Math.floor(Date.now() / 1000)): Record<string, string> {
  return {
    'content-type': 'application/json',
    'x-mlflow-delivery-id': id,
    'x-mlflow-timestamp': String(timestamp),
    'x-mlflow-signature': signStandard(SECRET, id, timestamp, body),
  };
}
const post = (body: string, h: Record<string, string>) => svc.app.request('/webhooks/mlflow', { method: 'POST', body, headers: h });

beforeAll(async () => {
  mlflow = new MlflowStandIn(TOKEN);
  await mlflow.listen();
  mlflow.register('digits-classifier', '3', '1/4f1e2d3c4b5a69788796a5b4c3d2e1f0/artifacts/model', {
    MLmodel: new TextEncoder().encode('flavors:\n  keras:\n    data: data\n    keras_version: 3.6.0\n'),
    'requirements.txt': new TextEncoder().encode('keras==3.6.0\n'),
    'data/model.keras': new Uint8Array(readFileSync('test/fixtures/keras/mnist-badnets.keras')),
  });
  dir = mkdtempSync(join(tmpdir(), 'sg-mlflow-'));
  // Version 4's artifacts are in an S3 artifact store the service reads itself (here: the local bucket).
  mlflow.register('digits-classifier', '4', 's3://scans/mlruns/2/77aa/artifacts/model', {});
  mkdirSync(join(dir, 'b/scans/mlruns/2/77aa/artifacts/model/data'), { recursive: true });
  copyFileSync('test/fixtures/keras/mnist-clean-1.keras', join(dir, 'b/scans/mlruns/2/77aa/artifacts/model/data/model.keras'));
  mlflow.register('digits-classifier', '5', 's3://elsewhere/mlruns/9/artifacts/model', {});
  svc = createNodeService({
    env: {
      SHAPGUARD_DATA_DIR: join(dir, 'b'),
      SHAPGUARD_STATE_DB: join(dir, 's.db'),
      BUCKETS: 'scans',
      OUTPUT_BUCKET: 'scans',
      MLFLOW_WEBHOOK_SECRETS: SECRET,
      MLFLOW_TRACKING_URI: mlflow.endpoint,
      MLFLOW_TRACKING_TOKEN: TOKEN,
      ...TEST_SCAN_ENV,
    },
    events: { onDone: (_id, verdict, status) => done.push(`${status}:${verdict}`) },
  });
  svc.runner.start();
});
afterAll(() => {
  svc.close();
  mlflow.close();
});

describe('MLflow webhooks', () => {
  it('reject a bad signature, a stale timestamp and a body changed after signing; nothing queued or fetched', async () => {
    const h = headers('d-1', recorded);
    expect(
      (await post(recorded, { ...h, 'x-mlflow-signature': signStandard('other', 'd-1', Number(h['x-mlflow-timestamp']), recorded) }))
        .status,
    ).toBe(401);
    expect((await post(recorded, headers('d-1', recorded, Math.floor(Date.now() / 1000) - 600))).status).toBe(401);
    expect((await post(recorded.replace('"3"', '"4"'), h)).status).toBe(401);
    expect(svc.state.counts().pending ?? 0).toBe(0);
    expect(mlflow.seen).toEqual([]);
  });

  it('scan the new version through the tracking server, write outputs, and tag the version with the verdict', async () => {
    const res = await post(recorded, headers('d-2', recorded));
    expect(res.status).toBe(202);
    // MLflow retries a delivery it thinks failed: the same delivery id queues nothing more.
    expect(await (await post(recorded, headers('d-2', recorded))).json()).toMatchObject({ duplicate: true });
    await new Promise((r) => setTimeout(r, 50));
    await svc.runner.idle();
    expect(done).toEqual(['scanned:backdoor']);
    const folder = join(dir, 'b/scans/shapguard/mlflow/digits-classifier/3/data/model.keras/v3');
    const report = JSON.parse(readFileSync(join(folder, 'report.json'), 'utf8'));
    expect(reportSchemaErrors(report)).toEqual([]);
    expect(report.input.format).toBe('keras-zip');
    // Data-free: detected, not repaired, nothing written but the report and marks (steps.ts, DATA_FREE_UNCERTIFIED).
    expect(report.repair.status).toBe('not-repaired');
    expect(existsSync(join(folder, 'repaired'))).toBe(false);
    expect(existsSync(join(folder, 'verdict.json'))).toBe(true);
    const tags = mlflow.tagsOf('digits-classifier', '3');
    expect(tags['shapguard.verdict']).toBe('backdoor');
    expect(tags['shapguard.report']).toBe('shapguard/mlflow/digits-classifier/3/data/model.keras/v3/report.json');
    // Detected, not repaired: neither the version nor any copy of it may ship.
    expect(tags['shapguard.deployable']).toBe('false');
    expect(tags['shapguard.ship']).toBe('nothing');
    expect(mlflow.seen.every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
    expect(
      mlflow.seen.some((r) => r.path.startsWith('/api/2.0/mlflow/model-versions/get-download-uri?name=digits-classifier&version=3')),
    ).toBe(true);
  });

  it('read an s3:// artifact location straight from a configured bucket, and refuse one in any other bucket', async () => {
    for (const [id, version] of [
      ['d-4', '4'],
      ['d-5', '5'],
    ] as const) {
      const body = recorded.replace('"version": "3"', `"version": "${version}"`);
      expect((await post(body, headers(id, body))).status).toBe(202);
    }
    await new Promise((r) => setTimeout(r, 50));
    await svc.runner.idle();
    expect(
      JSON.parse(readFileSync(join(dir, 'b/scans/shapguard/mlflow/digits-classifier/4/data/model.keras/v4/report.json'), 'utf8')).verdict,
    ).toBe('clean');
    expect(mlflow.tagsOf('digits-classifier', '4')).toMatchObject({
      'shapguard.verdict': 'clean',
      'shapguard.deployable': 'true',
      'shapguard.ship': 'original',
    });
    const refused = (await svc.state.byObject('mlflow:digits-classifier', ''))!.find((r) => r.object.versionId === '5')!;
    expect(refused).toMatchObject({ state: 'failed' });
    expect(refused.reason).toMatch(
      /s3:\/\/elsewhere\/mlruns\/9\/artifacts\/model are neither behind the tracking server's artifact proxy nor in a bucket/,
    );
    expect(mlflow.tagsOf('digits-classifier', '5')).toEqual({});
  });
});
