import { readFileSync } from 'node:fs';
import { cloudflareTest } from '@cloudflare/vitest-pool-workers';
import { defineConfig } from 'vitest/config';

const fixture = 'test/fixtures/models/mnist-badnets';

export default defineConfig({
  test: {
    // tfjs keeps one global engine per process; isolate files in forks, one core for each of CI's two.
    maxWorkers: 2,
    testTimeout: 600_000,
    hookTimeout: 900_000,
    projects: [
      {
        extends: true,
        test: { name: 'node', include: ['test/**/*.test.ts'], exclude: ['test/worker/**'], pool: 'forks' },
      },
      {
        extends: true,
        // The Worker itself, in workerd through Miniflare: R2, Queues and tfjs on wasm from the imported module.
        plugins: [
          cloudflareTest({
            wrangler: { configPath: './wrangler.toml' },
            miniflare: {
              bindings: {
                STANDARD_WEBHOOK_SECRETS: 'whsec_dGVzdC1zZWNyZXQtZm9yLXdvcmtlcmQtdGVzdHMtb25seQ==',
                SHAPGUARD_API_TOKEN: 'worker-test-token',
                SCAN_MAX_EVALS: '',
                SCAN_BUDGET_SECONDS: '600',
                // workerd has no file system: the fixture model travels as bindings.
                FIXTURE_MODEL_JSON: readFileSync(`${fixture}/model.json`, 'utf8'),
                FIXTURE_SHARD_B64: readFileSync(`${fixture}/group1-shard1of1.bin`).toString('base64'),
              },
            },
          }),
        ],
        test: { name: 'workers', include: ['test/worker/**/*.test.ts'] },
      },
    ],
  },
});
