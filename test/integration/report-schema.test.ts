import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { MODELS } from '../helpers/fixtures.ts';
import { reportSchemaErrors } from '../helpers/schema.ts';

// Every report a CLI test reads is validated in runCli; this checks the schema is strict enough to fail.
describe('the published report schema', () => {
  it('accepts a real report and rejects one with an unknown field, a bad verdict or a missing field', async () => {
    const run = await runCli(['scan', join(MODELS, 'mnist-clean-1/model.json'), '--out', '$OUT', '--max-evals', '20000']);
    const report = JSON.parse(readFileSync(join(run.out, 'report.json'), 'utf8')) as Record<string, unknown>;
    expect(reportSchemaErrors(report)).toEqual([]);
    expect(reportSchemaErrors({ ...report, extra: 1 })).not.toEqual([]);
    expect(reportSchemaErrors({ ...report, verdict: 'fine' })).not.toEqual([]);
    const missing = { ...report };
    delete missing.detection;
    expect(reportSchemaErrors(missing)).not.toEqual([]);
    const config = report.config as Record<string, Record<string, unknown>>;
    expect(reportSchemaErrors({ ...report, config: { ...config, detection: { ...config.detection, secret: true } } })).not.toEqual([]);
  });
});
