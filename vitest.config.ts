import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { cloudflareTest } from '@cloudflare/vitest-pool-workers';
import { defineConfig } from 'vitest/config';
import { encode as encodeJpeg } from 'jpeg-js';
import { loadMnist } from './test/data/mnist.ts';
import { TEST_SAMPLE_FROM, trustedSample } from './test/helpers/sample.ts';
import { runOnnx } from './test/helpers/onnx.ts';
import { RUN_ID_VARIABLE } from './test/helpers/shared-run.ts';
import { SlowFirst } from './test/helpers/sequencer.ts';

const fixture = 'test/fixtures/models/mnist-badnets';

// Scans several test files read are run once per `npm test` (test/helpers/shared-run.ts), under this id.
process.env[RUN_ID_VARIABLE] = randomUUID();

/**
 * A trusted sample for the Worker's few-shot scan (workerd has no file system): trustedSample's ten real
 * MNIST test digits per class (a certificate needs three held back per class: steps.ts MIN_HELD_BACK_PER_CLASS), the
 * first as JPEG in place of its PNG and the rest as PNG, so both decoders run inside workerd on the same
 * digits the bench's few-shot runs use.
 */
async function workerSample(): Promise<string> {
  const digits = loadMnist('test');
  const files = await trustedSample('mnist', 10);
  // The draw's first image is row TEST_SAMPLE_FROM, filed as its class's 0.png.
  const row = TEST_SAMPLE_FROM;
  const rgba = new Uint8Array(28 * 28 * 4);
  for (let p = 0; p < 784; p++)
    rgba.fill(Math.round(digits.images[row * 784 + p]! * 255), p * 4, p * 4 + 3).fill(255, p * 4 + 3, p * 4 + 4);
  const jpeg = encodeJpeg({ width: 28, height: 28, data: rgba }, 95).data;
  const first = `${digits.labels[row]}/0.png`;
  const all = [...files.filter((f) => f.path !== first), { path: `${digits.labels[row]}/0.jpg`, bytes: new Uint8Array(jpeg) }];
  return JSON.stringify(all.map((f) => ({ path: f.path, b64: Buffer.from(f.bytes).toString('base64') })));
}
const sampleJson = await workerSample();

/**
 * An ONNX model for workerd (PyTorch's export of the ops fixture: every mapped op, opset 17, unfolded shape
 * arithmetic) and onnxruntime's outputs on fixed images, computed here in Node: the Worker must match them.
 */
async function workerOnnx(): Promise<{ b64: string; expected: string }> {
  const bytes = readFileSync('test/fixtures/onnx/ops-o17-nofold.onnx');
  const images = Float32Array.from({ length: 4 * 16 * 16 * 3 }, (_, i) => 0.5 + 0.5 * Math.sin(i * 0.37 + 2));
  const out = await runOnnx(new Uint8Array(bytes), images, [16, 16, 3]);
  return { b64: bytes.toString('base64'), expected: JSON.stringify(Array.from(out)) };
}
const onnxFixture = await workerOnnx();

const LAMBDA_TEST = 'test/integration/service/lambda.test.ts';

export default defineConfig({
  test: {
    // tfjs keeps one global engine per process: files are isolated in forks. Three on CI's two cores: most
    // files wait on a child (the CLI, a server, a browser) part of the time, and a third keeps both cores
    // busy through those waits (measured: the suite's wall time, docs/development.md).
    maxWorkers: 3,
    sequence: { sequencer: SlowFirst },
    testTimeout: 600_000,
    hookTimeout: 900_000,
    projects: [
      // Tiers, cheapest first: `npm run test:unit` alone checks a change to pure logic in seconds.
      // unit: no scans, no servers or outside programs; wasm: engine scans in this process;
      // integration: the built CLI, the Node service, moto's S3, h5py and chromium.
      // Pure logic, no engine state to leak between files: one module cache per worker halves the tier's
      // CPU time (32 s to 15 s, most of it imports), on a suite that keeps CI's two cores busy throughout.
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'], pool: 'forks', isolate: false } },
      { extends: true, test: { name: 'wasm', include: ['test/wasm/**/*.test.ts'], pool: 'forks' } },
      // The CLI, services and browsers run in children; the files share a module cache (as the unit tier),
      // which spares each of them importing tfjs and the engine again.
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          exclude: ['**/node_modules/**', LAMBDA_TEST],
          pool: 'forks',
          isolate: false,
        },
      },
      // The Lambda bundle imports its own copy of tfjs, and tfjs keeps its engine on globalThis, shared with
      // the files that scan in this process. On one CI run, with the files in a new order, its scan ended
      // `error` in 0.4 s (it passes alone and passed in the run before): a fork of its own takes what other
      // files leave behind out of the question.
      { extends: true, test: { name: 'integration-lambda', include: [LAMBDA_TEST], pool: 'forks' } },
      {
        extends: true,
        // The Worker itself, in workerd through Miniflare: R2, Queues and tfjs on wasm from the imported module.
        plugins: [
          cloudflareTest(({ inject }) => ({
            wrangler: { configPath: './wrangler.toml' },
            miniflare: {
              bindings: {
                // moto's S3 server, started by test/workers/global-setup.ts.
                S3_BUCKETS: 'models-s3',
                S3_ENDPOINT: inject('s3Endpoint'),
                S3_FORCE_PATH_STYLE: 'true',
                AWS_ACCESS_KEY_ID: 'test',
                AWS_SECRET_ACCESS_KEY: 'test',
                STANDARD_WEBHOOK_SECRETS: 'whsec_dGVzdC1zZWNyZXQtZm9yLXdvcmtlcmQtdGVzdHMtb25seQ==',
                SHAPGUARD_API_TOKEN: 'worker-test-token',
                // Bounded by evaluations, never the clock (test/helpers/scan-bounds.ts).
                SCAN_MAX_EVALS: '400000',
                SCAN_BUDGET_SECONDS: '3600',
                // workerd has no file system: the fixture model travels as bindings.
                FIXTURE_MODEL_JSON: readFileSync(`${fixture}/model.json`, 'utf8'),
                FIXTURE_SHARD_B64: readFileSync(`${fixture}/group1-shard1of1.bin`).toString('base64'),
                // The R2 test's model is scanned few-shot, with FIXTURE_SAMPLE_JSON uploaded under samples/mnist/.
                CLEAN_SAMPLES: 'uploads/mnist-badnets/=samples/mnist/',
                FIXTURE_SAMPLE_JSON: sampleJson,
                FIXTURE_ONNX_B64: onnxFixture.b64,
                FIXTURE_ONNX_EXPECTED: onnxFixture.expected,
              },
            },
          })),
        ],
        // As wrangler.toml's [alias]: the SDK's browser XML parser needs DOMParser, which workerd lacks.
        resolve: { alias: { '@aws-sdk/xml-builder': resolve('node_modules/@aws-sdk/xml-builder/dist-cjs/index.js') } },
        test: { name: 'workers', include: ['test/workers/**/*.test.ts'], globalSetup: ['test/workers/global-setup.ts'] },
      },
    ],
  },
});
