import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { TEST_BUDGET_SECONDS, TEST_MAX_EVALS } from '../helpers/scan-bounds.ts';

// The GitHub Action: action.yml's wiring checked by parsing it, and its scan step (the script the action
// runs) run here as a runner would, with GITHUB_ACTION_PATH and GITHUB_OUTPUT set.

interface Step {
  uses?: string;
  run?: string;
  id?: string;
  if?: string;
  env?: Record<string, string>;
  with?: Record<string, string>;
}

describe('action.yml', () => {
  const action = parse(readFileSync('action.yml', 'utf8')) as {
    inputs: Record<string, unknown>;
    outputs: Record<string, { value: string }>;
    runs: { using: string; steps: Step[] };
  };

  it('is a composite action whose scan step runs the tested script with every input passed through', () => {
    expect(action.runs.using).toBe('composite');
    const scan = action.runs.steps.find((s) => s.id === 'scan')!;
    expect(scan.run).toContain('tools/action-scan.sh');
    expect(existsSync('tools/action-scan.sh')).toBe(true);
    for (const input of ['models', 'budget', 'max-evals', 'seed', 'out', 'signing-key']) {
      expect(Object.values(scan.env!)).toContain(`\${{ inputs.${input} }}`);
    }
    expect(action.outputs.verdict!.value).toBe('${{ steps.scan.outputs.verdict }}');
    // Reports and SARIF are uploaded even when the scan step failed the job.
    for (const uses of ['actions/upload-artifact@v4', 'github/codeql-action/upload-sarif@v3']) {
      expect(action.runs.steps.find((s) => s.uses === uses)?.if).toMatch(/^always\(\)/);
    }
  });

  it('its scan step fails on a backdoored model, passes a clean one, and writes reports, SARIF and the verdict output', () => {
    const work = mkdtempSync(join(tmpdir(), 'sg-action-'));
    const run = (models: string) =>
      spawnSync('bash', [resolve('tools/action-scan.sh')], {
        cwd: work,
        encoding: 'utf8',
        env: {
          ...process.env,
          GITHUB_ACTION_PATH: resolve('.'),
          GITHUB_OUTPUT: join(work, `output-${models.length}`),
          SHAPGUARD_MODELS: models,
          // Bounded by evaluations, as every scan in the suite (helpers/scan-bounds.ts).
          SHAPGUARD_BUDGET: String(TEST_BUDGET_SECONDS),
          SHAPGUARD_MAX_EVALS: String(TEST_MAX_EVALS),
          SHAPGUARD_OUT: 'out',
        },
      });
    const clean = resolve('test/fixtures/keras/mnist-clean-1.h5');
    const both = `${clean}\n${resolve('test/fixtures/models/mnist-badnets/model.json')}`;
    const a = run(clean);
    expect(a.status, a.stderr).toBe(0);
    expect(readFileSync(join(work, `output-${clean.length}`), 'utf8')).toBe('verdict=clean\n');
    const b = run(both);
    expect(b.status).toBe(1);
    expect(readFileSync(join(work, `output-${both.length}`), 'utf8')).toBe('verdict=backdoor\n');
    expect(b.stdout).toMatch(/::notice title=shapguard::.*model\.json: backdoor/);
    const sarif = JSON.parse(
      readFileSync(
        join(work, 'out', `${resolve('test/fixtures/models/mnist-badnets/model.json').replace(/[^A-Za-z0-9._-]/g, '_')}.sarif`),
        'utf8',
      ),
    );
    expect(sarif.runs[0].results.length).toBeGreaterThan(0);
  });
});
