// `npm run demo`: the whole webhook-to-report path on this machine. The Worker is bundled by wrangler as
// for a deploy, run in workerd by Miniflare with its R2 bucket and Queue (wrangler.toml's bindings), the
// bundled backdoored sample model is uploaded to the local bucket, the recorded R2 event notification from
// webhooks/r2/ is replayed into the queue, and the consumer's outputs are read back and copied to disk.
// A trusted sample (ten real MNIST test digits per class) sits beside it, so the scan runs few-shot and
// can certify its repair; a data-free scan detects, and never claims a repair (docs/threat-model.md).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Miniflare } from 'miniflare';
import { unstable_getMiniflareWorkerOptions } from 'wrangler';
import { prunedWords } from '../src/core/output/report-html.ts';
import type { ScanReport } from '../src/core/output/report.ts';
import { trustedSample } from '../test/helpers/sample.ts';

const root = resolve('.');
const work = join(root, '.shapguard/demo');
const sample = join(root, 'test/fixtures/models/mnist-badnets');
const event = JSON.parse(readFileSync(join(root, 'webhooks/r2/put-object.json'), 'utf8')) as {
  bucket: string;
  object: { key: string; size: number; eTag: string };
};
const step = (text: string) => console.log(`\n▸ ${text}`);
const t0 = performance.now();
const seconds = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

rmSync(work, { recursive: true, force: true });
step('bundling the Worker with wrangler (as `wrangler deploy` would)');
const built = spawnSync(
  process.execPath,
  [join(root, 'node_modules/wrangler/bin/wrangler.js'), 'deploy', '--dry-run', '--outdir', join(work, 'worker')],
  { encoding: 'utf8', env: { ...process.env, WRANGLER_SEND_METRICS: 'false' } },
);
if (built.status !== 0) throw new Error(`wrangler bundling failed:\n${built.stderr}`);
console.log(`  ${built.stdout.match(/Total Upload: .*/)?.[0] ?? 'bundled'}`);

step('starting it in workerd (Miniflare: R2 bucket MODELS, Queue JOBS with its consumer)');
const { workerOptions } = unstable_getMiniflareWorkerOptions(join(root, 'wrangler.toml'));
const apiToken = 'demo-token';
const mf = new Miniflare({
  ...(workerOptions as object),
  modules: true,
  scriptPath: join(work, 'worker/index.js'),
  modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
  bindings: {
    ...((workerOptions as { bindings?: Record<string, unknown> }).bindings ?? {}),
    SHAPGUARD_API_TOKEN: apiToken,
    CLEAN_SAMPLES: 'uploads/=samples/mnist/',
  },
} as ConstructorParameters<typeof Miniflare>[0]);
await mf.ready;
const health = await (await mf.dispatchFetch('http://localhost/health/wasm')).json();
console.log(`  tfjs backend in the Worker: ${JSON.stringify(health)}`);

step(`uploading the sample model (a BadNets-backdoored MNIST CNN) to r2://${event.bucket}/${event.object.key}`);
const bucket = await mf.getR2Bucket('MODELS');
const folder = event.object.key.slice(0, event.object.key.lastIndexOf('/') + 1);
// Plain Uint8Arrays and strings cross Miniflare's proxy; Node Buffers do not.
await bucket.put(`${folder}group1-shard1of1.bin`, new Uint8Array(readFileSync(join(sample, 'group1-shard1of1.bin'))));
const trusted = await trustedSample('mnist', 10);
for (const f of trusted) await bucket.put(`samples/mnist/${f.path}`, f.bytes);
const uploaded = await bucket.put(event.object.key, readFileSync(join(sample, 'model.json'), 'utf8'));
console.log(`  ETag ${uploaded!.etag}; a trusted sample of ${trusted.length} real digits under samples/mnist/ (CLEAN_SAMPLES)`);

step('replaying the recorded R2 event notification (webhooks/r2/put-object.json) into the queue');
const queue = await mf.getQueueProducer('JOBS');
await queue.send({
  ...event,
  object: { ...event.object, eTag: uploaded!.etag, size: uploaded!.size },
  eventTime: new Date().toISOString(),
});

/**
 * Miniflare's proxy reaches the bucket over a kept-alive HTTP connection. While the consumer computes,
 * workerd can close that connection just as a poll reuses it ("other side closed"); a list is idempotent,
 * so such a poll is simply sent again.
 */
async function listKeys(prefix: string): Promise<string[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return (await bucket.list({ prefix })).objects.map((o) => o.key);
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const dropped = err instanceof TypeError && (cause?.code === 'UND_ERR_SOCKET' || /other side closed/.test(cause?.message ?? ''));
      if (!dropped || attempt === 5) throw err;
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
}

step('waiting for the queue consumer to scan and write back');
const prefix = `shapguard/${event.object.key}/`;
let reportKey: string | undefined;
for (let i = 0; i < 600 && reportKey === undefined; i++) {
  await new Promise((r) => setTimeout(r, 500));
  reportKey = (await listKeys(prefix)).find((k) => k.endsWith('/report.json'));
}
if (reportKey === undefined) throw new Error('no report after 5 minutes');
const outputs = await listKeys(prefix);
const report = JSON.parse(await (await bucket.get(reportKey))!.text()) as ScanReport;
const verdictMark = JSON.parse(await (await bucket.get(outputs.find((k) => k.endsWith('/verdict.json'))!))!.text());

const out = join(work, 'out');
for (const key of outputs) {
  const path = join(out, key);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, new Uint8Array(await (await bucket.get(key))!.arrayBuffer()));
}
const status = await (
  await mf.dispatchFetch(`http://localhost/v1/scans?bucket=${event.bucket}&key=${encodeURIComponent(event.object.key)}`, {
    headers: { authorization: `Bearer ${apiToken}` },
  })
).json();
await mf.dispose();

const v = report.verification;
const pct = (x: number | undefined) => (x === undefined ? '–' : `${(x * 100).toFixed(1)}%`);
step(`done in ${seconds()}`);
console.log(`  verdict            ${report.verdict} (the upload deployable: ${verdictMark.deployable})`);
console.log(
  `  may ship           ${{ original: 'the upload', repaired: 'the repaired copy (repaired/), not the upload', nothing: 'nothing' }[verdictMark.ship as string]}`,
);
console.log(`  backdoor target    class ${report.detection?.flagged?.join(', ') || '–'}`);
console.log(
  `  mode               ${report.mode}${report.sample ? `, ${report.sample.images} trusted images (${report.sample.heldBack} held back for the final check)` : ''}`,
);
console.log(
  `  repair             ${report.repair?.status}, ${prunedWords(report.repair?.pruned ?? [])} of ${report.model?.playerLayers?.join(', ')}`,
);
if (v)
  console.log(
    `  reversed-trigger ASR ${pct(Object.values(v.before.reversedAsr as Record<string, number>)[0])} → ${pct(v.after ? Object.values(v.after.reversedAsr as Record<string, number>)[0] : undefined)} (synthetic check; real-data results: docs/benchmarks.md)`,
  );
const held = report.repair?.check?.heldBack;
if (held)
  console.log(
    `  held-back check    ${held.targets.map((t) => `class ${t.target} ${t.removed ? 'removed' : 'NOT removed'}`).join(', ')}; accuracy ${pct(held.accuracyBefore)} → ${pct(held.accuracyAfter)} on ${held.images} real images`,
  );
console.log(
  `  scan time          ${report.timings.totalSeconds.toFixed(1)} s, ${Math.round(report.budget.evaluationsUsed)} model evaluations, backend ${report.backend.name}${report.backend.simd ? ' SIMD' : ''}`,
);
console.log(
  `  status API         ${JSON.stringify((status as { scans: { id: string; state: string }[] }).scans.map((s) => ({ id: s.id, state: s.state })))}`,
);
console.log('\n  outputs in R2 (copied to .shapguard/demo/out/):');
for (const key of outputs) console.log(`    ${key}`);
console.log(`  the original upload r2://${event.bucket}/${event.object.key} was only read.`);
