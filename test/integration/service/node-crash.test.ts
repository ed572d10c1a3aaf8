import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort } from '../../helpers/moto.ts';
import { modelUploaded, newWhsec, standardHeaders } from '../../helpers/webhooks.ts';
import { reportSchemaErrors } from '../../helpers/schema.ts';
import { TEST_SCAN_ENV } from '../../helpers/scan-bounds.ts';

// `npm start`'s server as a real process, killed with SIGKILL in the middle of a scan and started again on
// the same state: the accepted job must complete, once.

const secret = newWhsec();
let dir: string;
let port: number;
let child: ChildProcess | undefined;
let logs = '';

function start(): Promise<void> {
  const env = {
    ...process.env,
    PORT: String(port),
    SHAPGUARD_DATA_DIR: join(dir, 'buckets'),
    SHAPGUARD_STATE_DB: join(dir, 'state.db'),
    STANDARD_WEBHOOK_SECRETS: secret,
    SHAPGUARD_API_TOKEN: 'crash-token',
    ...TEST_SCAN_ENV,
    BUCKETS: 'models',
  };
  child = spawn(process.execPath, ['dist/serve.mjs'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    child!.stdout!.on('data', (d: Buffer) => {
      logs += d.toString();
      if (logs.includes('"msg":"listening"')) resolve();
    });
    child!.stderr!.on('data', (d: Buffer) => (logs += d.toString()));
    child!.on('exit', (code) => reject(new Error(`server exited ${code}: ${logs}`)));
  });
}

async function status(id: string): Promise<{ state: string; attempts: number; verdict: string | null }> {
  const res = await fetch(`http://127.0.0.1:${port}/v1/scans/${id}`, {
    headers: { authorization: 'Bearer crash-token', connection: 'close' },
  });
  return (await res.json()) as { state: string; attempts: number; verdict: string | null };
}

beforeAll(async () => {
  const built = spawnSync(process.execPath, ['tools/build.mjs', 'src/server/serve.ts'], { encoding: 'utf8' });
  expect(built.status, built.stderr).toBe(0);
  dir = mkdtempSync(join(tmpdir(), 'sg-crash-'));
  port = await freePort();
  cpSync('test/fixtures/models/mnist-badnets', join(dir, 'buckets/models/m'), { recursive: true });
});
afterAll(() => child?.kill('SIGKILL'));

it('a job accepted before a SIGKILL mid-scan completes once after the restart', async () => {
  await start();
  const body = modelUploaded('models', 'm/model.json');
  const res = await fetch(`http://127.0.0.1:${port}/webhooks/standard`, {
    method: 'POST',
    body,
    headers: standardHeaders(secret, 'crash-1', body),
  });
  expect(res.status).toBe(202);
  const id = ((await res.json()) as { jobs: string[] }).jobs[0]!;
  for (let i = 0; i < 200 && (await status(id)).state !== 'running'; i++) await new Promise((r) => setTimeout(r, 25));
  await new Promise((r) => setTimeout(r, 1500)); // well into synthesis
  child!.removeAllListeners('exit');
  child!.kill('SIGKILL');
  await new Promise((r) => child!.once('exit', r));

  const outputs = join(dir, 'buckets/models/shapguard/m/model.json');
  const [version] = readdirSync(outputs);
  expect(existsSync(join(outputs, version!, '.lease'))).toBe(true);
  expect(existsSync(join(outputs, version!, 'report.json'))).toBe(false);

  logs = '';
  await start();
  expect(logs).toMatch(/"recoveredJobs":1/);
  let s = await status(id);
  for (let i = 0; i < 2400 && s.state !== 'done'; i++) {
    await new Promise((r) => setTimeout(r, 250));
    s = await status(id);
  }
  expect(s).toMatchObject({ state: 'done', attempts: 2, verdict: 'backdoor' });
  expect(readdirSync(outputs)).toEqual([version]);
  // Data-free: a report and a mark, no repaired model (steps.ts, DATA_FREE_UNCERTIFIED).
  expect(readdirSync(join(outputs, version!)).sort()).toEqual(['report.html', 'report.json', 'verdict.json']);
  const report = JSON.parse(readFileSync(join(outputs, version!, 'report.json'), 'utf8'));
  expect(reportSchemaErrors(report)).toEqual([]);
  expect(report.verdict).toBe('backdoor');
  // The state turns "done" before the server's log line for it reaches this process's pipe.
  for (let i = 0; i < 100 && !logs.includes('"msg":"job done"'); i++) await new Promise((r) => setTimeout(r, 50));
  expect(logs.match(/"msg":"job done"/g)).toHaveLength(1);

  // A plain stop (systemd, docker stop) says so in the log and exits 0.
  child!.removeAllListeners('exit');
  const exited = new Promise<number | null>((r) => child!.once('exit', r));
  child!.kill('SIGTERM');
  expect(await exited).toBe(0);
  expect(logs).toMatch(/"msg":"stopping","signal":"SIGTERM","runningJobs":0,"pendingJobs":0/);
}, 900_000);
