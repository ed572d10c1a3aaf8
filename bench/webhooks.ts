// `npm run bench:webhooks`: signed Standard Webhooks deliveries driven open-loop at the Node server over
// real HTTP, acknowledgement latency measured per delivery. Two runs: idle queue, and with a scan of the
// sample model running meanwhile (scans run in a worker thread, so the event loop must stay free).
import { serve } from '@hono/node-server';
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNodeService } from '../src/server/service.ts';
import { modelUploaded, newWhsec, standardHeaders } from '../test/helpers/webhooks.ts';

const RATE = Number(process.env.BENCH_RATE ?? 200);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function run(label: string, withScan: boolean): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'sg-bench-wh-'));
  const secret = newWhsec();
  const svc = createNodeService({
    env: { SHAPGUARD_DATA_DIR: join(dir, 'b'), SHAPGUARD_STATE_DB: join(dir, 's.db'), STANDARD_WEBHOOK_SECRETS: secret, BUCKETS: 'models' },
  });
  const server = serve({ fetch: svc.app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise((r) => server.once('listening', r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/webhooks/standard`;
  let scanning = false;
  if (withScan) {
    cpSync('test/fixtures/models/mnist-badnets', join(dir, 'b/models/sample'), { recursive: true });
    svc.runner.start();
    const body = modelUploaded('models', 'sample/model.json');
    await fetch(url, { method: 'POST', body, headers: standardHeaders(secret, 'scan-0', body) });
    await new Promise((r) => setTimeout(r, 1000)); // into synthesis
    scanning = (svc.state.counts().running ?? 0) === 1;
  }
  const total = RATE * SECONDS;
  // Signed up front, so the client's own HMAC work does not skew the schedule.
  const signed = (i: number) => {
    const body = modelUploaded('models', `bench/${i}/model.h5`, `etag-${i}`);
    return { body, headers: standardHeaders(secret, `bench-${i}`, body) };
  };
  // One unmeasured second first: JIT and the first SQLite pages are not what a sender sees in steady state.
  for (let i = 0; i < RATE; i++) {
    const w = signed(-1 - i);
    await fetch(url, { method: 'POST', body: w.body, headers: w.headers }).then((r) => r.arrayBuffer());
  }
  const deliveries = Array.from({ length: total }, (_, i) => signed(i));
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  await Promise.all(
    deliveries.map(async (d, i) => {
      const due = start + (i * 1000) / RATE;
      await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
      const t = performance.now();
      try {
        const res = await fetch(url, { method: 'POST', body: d.body, headers: d.headers });
        await res.arrayBuffer();
        if (res.status !== 202) errors++;
      } catch {
        errors++;
      }
      latencies.push(performance.now() - t);
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  const stillScanning = withScan && (svc.state.counts().running ?? 0) === 1;
  server.close();
  svc.close();
  latencies.sort((a, b) => a - b);
  const scanNote = withScan
    ? scanning && stillScanning
      ? 'scan running throughout'
      : scanning
        ? 'scan running at start'
        : 'scan not running'
    : '–';
  return `| ${label} | ${total} | ${(total / elapsed).toFixed(0)}/s | ${quantile(latencies, 0.5).toFixed(1)} | ${quantile(latencies, 0.99).toFixed(1)} | ${latencies.at(-1)!.toFixed(1)} | ${errors} | ${scanNote} |`;
}

console.log(`\n#### Webhook acknowledgement (Node server, SQLite queue, ${RATE} deliveries/s for ${SECONDS} s)\n`);
console.log('| run | deliveries | achieved | p50 ms | p99 ms | max ms | non-202 | scan |');
console.log('|---|---|---|---|---|---|---|---|');
console.log(await run('idle queue', false));
console.log(await run('during a scan', true));
process.exit(0);
