import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ScanReport } from '../../src/core/output/report.ts';
import { toSarif, type SarifLog } from '../../src/core/output/sarif.ts';
import { fixtureScanArgs, runCli, runCliShared } from '../helpers/cli.ts';
import { MODELS } from '../helpers/fixtures.ts';

async function sarifOf(model: string, extra: string[] = []): Promise<{ log: SarifLog; code: number }> {
  const file = join(mkdtempSync(join(tmpdir(), 'shapguard-sarif-')), 'scan.sarif');
  const run = await runCli(['scan', model, '--out', '$OUT', '--sarif', file, ...extra]);
  return { log: JSON.parse(readFileSync(file, 'utf8')) as SarifLog, code: run.code };
}

/** The SARIF log of the fixture scan the end-to-end files judge (shared with them: fixtureScanArgs). */
async function fixtureSarif(model: string): Promise<{ log: SarifLog; code: number; report: ScanReport | null }> {
  const run = await runCliShared(fixtureScanArgs(join(MODELS, model)));
  return { log: JSON.parse(readFileSync(join(run.out, 'scan.sarif'), 'utf8')) as SarifLog, code: run.code, report: run.report };
}

/** What GitHub code scanning relies on: the version, rules that results point to, and severities. */
function expectWellFormed(log: SarifLog): void {
  expect(log.version).toBe('2.1.0');
  expect(log.runs).toHaveLength(1);
  const { rules } = log.runs[0]!.tool.driver;
  for (const r of rules) expect(Number(r.properties['security-severity'])).toBeGreaterThan(0);
  for (const res of log.runs[0]!.results) {
    expect(rules[res.ruleIndex]!.id).toBe(res.ruleId);
    expect(Object.values(res.partialFingerprints)[0]).toMatch(/^[0-9a-f]{64}:SG\d{3}:/);
    expect(res.locations[0]!.physicalLocation.artifactLocation.uri).toMatch(/model\.json$/);
  }
}

describe('SARIF output (--sarif)', () => {
  it('a backdoor gives one error result per flagged target, with a stable fingerprint', async () => {
    const a = await fixtureSarif('mnist-badnets/model.json');
    expectWellFormed(a.log);
    const results = a.log.runs[0]!.results;
    expect(results.map((r) => [r.ruleId, r.level, r.properties.target])).toEqual([['SG001', 'error', 6]]);
    // Stable: what differs between two runs of the same model (timings, where the model lies and what its
    // output folder is) leaves the fingerprint as it was; the model's content digest does not.
    const report = a.report!;
    const again = toSarif(
      { ...report, timings: { ...report.timings!, totalSeconds: report.timings!.totalSeconds + 9 } },
      'elsewhere/model.json',
    );
    expect(again.runs[0]!.results[0]!.partialFingerprints).toEqual(results[0]!.partialFingerprints);
    const otherModel = { ...report, input: { ...report.input!, digest: { ...report.input!.digest, combined: 'f'.repeat(64) } } };
    expect(toSarif(otherModel, 'model.json').runs[0]!.results[0]!.partialFingerprints).not.toEqual(results[0]!.partialFingerprints);
    expect(a.code).toBe(1);
  });

  it('a clean model gives no results', async () => {
    const { log, code } = await fixtureSarif('mnist-clean-1/model.json');
    expectWellFormed(log);
    expect(log.runs[0]!.results).toEqual([]);
    expect(log.runs[0]!.properties.verdict).toBe('clean');
    expect(code).toBe(0);
  });

  it('an error, an incomplete scan and an unsupported model each give a result, never an empty log', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shapguard-sarif-bad-'));
    writeFileSync(join(dir, 'model.json'), '{not json');
    const error = await sarifOf(join(dir, 'model.json'));
    expect(error.log.runs[0]!.results.map((r) => r.ruleId)).toEqual(['SG003']);
    const incomplete = await sarifOf(join(MODELS, 'mnist-clean-1/model.json'), ['--max-evals', '500']);
    expect(incomplete.log.runs[0]!.results.map((r) => r.ruleId)).toEqual(['SG002']);
    const lambda = JSON.parse(readFileSync(join(MODELS, 'mnist-clean-1/model.json'), 'utf8')) as {
      modelTopology: { config: { layers: { class_name: string }[] } };
    };
    lambda.modelTopology.config.layers[1]!.class_name = 'Lambda';
    writeFileSync(join(dir, 'model.json'), JSON.stringify(lambda));
    const unsupported = await sarifOf(join(dir, 'model.json'));
    expect(unsupported.log.runs[0]!.results.map((r) => [r.ruleId, r.level])).toEqual([['SG004', 'warning']]);
    expect(unsupported.code).toBe(3);
  });
});
