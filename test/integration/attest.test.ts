import { generateKeyPairSync } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Envelope, Statement } from '../../src/core/output/attest.ts';
import { runCli, type CliRun } from '../helpers/cli.ts';
import { MODELS } from '../helpers/fixtures.ts';
import { sampleDir } from '../helpers/sample.ts';

const dir = mkdtempSync(join(tmpdir(), 'shapguard-attest-'));
function keyPair(name: string): { priv: string; pub: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const priv = join(dir, `${name}.key.pem`);
  const pub = join(dir, `${name}.pub.pem`);
  writeFileSync(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(pub, publicKey.export({ type: 'spki', format: 'pem' }));
  return { priv, pub };
}

describe('signed attestation (in-toto test-result statement in a DSSE envelope, Ed25519)', () => {
  const key = keyPair('scanner');
  const other = keyPair('other');
  let clean: CliRun;
  let backdoor: CliRun;
  const model = join(dir, 'model');

  beforeAll(async () => {
    cpSync(join(MODELS, 'mnist-clean-1'), model, { recursive: true });
    clean = await runCli(['scan', join(model, 'model.json'), '--out', '$OUT', '--sign-key', key.priv]);
    // Few-shot, so that a repair is made and its files are attested.
    const sample = await sampleDir('mnist');
    backdoor = await runCli([
      'scan',
      join(MODELS, 'mnist-badnets/model.json'),
      '--out',
      '$OUT',
      '--sign-key',
      key.priv,
      '--seed',
      '2',
      '--clean-samples',
      sample,
    ]);
  });

  const verify = (run: CliRun, extra: string[], pub = key.pub) =>
    runCli(['verify', join(run.out, 'attestation.dsse.json'), '--key', pub, ...extra], mkdtempSync(join(tmpdir(), 'shapguard-v-')));
  const statementOf = (run: CliRun) =>
    JSON.parse(
      Buffer.from((JSON.parse(readFileSync(join(run.out, 'attestation.dsse.json'), 'utf8')) as Envelope).payload, 'base64').toString(),
    ) as Statement;

  it('PASSED only for clean; subjects are the model files, report.json and the repaired files', () => {
    expect(clean.report?.verdict).toBe('clean');
    const s = statementOf(clean);
    expect(s.predicate.result).toBe('PASSED');
    expect(s.subject.map((x) => x.name)).toEqual(['model/group1-shard1of1.bin', 'model/model.json', 'report.json']);
    const b = statementOf(backdoor);
    expect(b.predicate.result).toBe('FAILED');
    expect(b.subject.filter((x) => x.name.startsWith('repaired/')).length).toBe(2);
    expect(b.predicate.configuration[0]!.annotations.verdict).toBe('backdoor');
  });

  it('verifies the signature, the model and the report', async () => {
    const v = await verify(clean, ['--model', join(model, 'model.json'), '--report', join(clean.out, 'report.json')]);
    expect(v.stdout).toMatch(/^OK: signature valid; result PASSED/);
    expect(v.code).toBe(0);
  });

  it('passes only what may ship: not the backdoored upload (unless --integrity-only), but its certified repair', async () => {
    expect(backdoor.report!.repair!.status, backdoor.stderr).toBe('repaired');
    const upload = await verify(backdoor, ['--model', join(MODELS, 'mnist-badnets/model.json')]);
    expect([upload.code, upload.stdout]).toEqual([1, expect.stringMatching(/^FAIL: signature valid; result FAILED.*not to be shipped/)]);
    const integrity = await verify(backdoor, ['--model', join(MODELS, 'mnist-badnets/model.json'), '--integrity-only']);
    expect([integrity.code, integrity.stdout]).toEqual([0, expect.stringMatching(/^OK: signature valid; result FAILED; .*model matches/)]);
    const repaired = await verify(backdoor, ['--model', backdoor.repairedDir!, '--report', join(backdoor.out, 'report.json')]);
    expect([repaired.code, repaired.stdout]).toEqual([
      0,
      expect.stringMatching(/repaired model matches, report matches; the repaired model may ship/),
    ]);
    const bare = await verify(backdoor, []);
    expect(bare.code).toBe(1);
  });

  it('answers --help and a bad flag with its usage, never a stack trace', async () => {
    const help = await runCli(['verify', '--help']);
    expect([help.code, help.stdout]).toEqual([0, expect.stringMatching(/^usage: shapguard verify .*--integrity-only/)]);
    const bad = await runCli(['verify', 'a.json', '--key', key.pub, '--bogus', 'x']);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toMatch(/Unknown option '--bogus'[\s\S]*usage: shapguard verify/);
    expect(bad.stdout + bad.stderr).not.toMatch(/\n\s+at /);
  });

  it('fails for a tampered model, a tampered report, a wrong key and a truncated envelope', async () => {
    const tampered = join(dir, 'tampered');
    cpSync(model, tampered, { recursive: true });
    const shard = join(tampered, 'group1-shard1of1.bin');
    const bytes = readFileSync(shard);
    bytes[100] = bytes[100]! ^ 1;
    writeFileSync(shard, bytes);
    const m = await verify(clean, ['--model', join(tampered, 'model.json')]);
    expect([m.code, m.stdout]).toEqual([1, expect.stringMatching(/FAIL: model file group1-shard1of1.bin does not match/)]);

    const report = join(dir, 'report.json');
    writeFileSync(report, readFileSync(join(clean.out, 'report.json'), 'utf8').replace('"clean"', '"clean" '));
    const r = await verify(clean, ['--report', report]);
    expect([r.code, r.stdout]).toEqual([1, expect.stringMatching(/FAIL: report.json does not match/)]);

    const k = await verify(clean, [], other.pub);
    expect([k.code, k.stdout]).toEqual([1, expect.stringMatching(/FAIL: no signature in the attestation verifies with this key/)]);

    const env = readFileSync(join(clean.out, 'attestation.dsse.json'), 'utf8');
    const cut = mkdtempSync(join(tmpdir(), 'shapguard-cut-'));
    writeFileSync(join(cut, 'attestation.dsse.json'), env.slice(0, env.length / 2));
    const t = await runCli(['verify', join(cut, 'attestation.dsse.json'), '--key', key.pub], mkdtempSync(join(tmpdir(), 'shapguard-v-')));
    expect([t.code, t.stdout]).toEqual([1, expect.stringMatching(/FAIL: the attestation is not readable JSON/)]);
  });
});
