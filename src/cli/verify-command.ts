import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { importEd25519, verifyEnvelope, type Statement } from '../core/output/attest.ts';
import { digestFiles, sha256Hex } from '../core/util/digest.ts';
import { readModelFiles } from '../node/read-model.ts';

export const VERIFY_USAGE =
  'usage: shapguard verify <attestation.dsse.json> --key <public-key.pem> [--model <path>] [--report <report.json>]';

/**
 * `shapguard verify`: checks the attestation's signature with the public key, then that the model and
 * report given match the digests it names. Returns 0 when everything checks, 1 when anything does not.
 */
export async function verifyCommand(argv: string[], log: (line: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { key: { type: 'string' }, model: { type: 'string' }, report: { type: 'string' } },
  });
  if (positionals.length !== 1 || values.key === undefined) {
    log(VERIFY_USAGE);
    return 2;
  }
  try {
    const { key, kind } = await importEd25519(await readFile(resolve(values.key), 'utf8'));
    if (kind !== 'public') throw new Error('--key must be the public key (SPKI PEM)');
    let envelope: unknown;
    try {
      envelope = JSON.parse(await readFile(resolve(positionals[0]!), 'utf8'));
    } catch (err) {
      throw new Error(`the attestation is not readable JSON: ${(err as Error).message}`, { cause: err });
    }
    const statement: Statement = await verifyEnvelope(envelope, key);
    const subjects = new Map(statement.subject.map((s) => [s.name, s.digest.sha256]));
    const problems: string[] = [];
    if (values.model !== undefined) {
      const { files } = await readModelFiles(resolve(values.model));
      const digest = await digestFiles(files);
      const named = [...subjects.keys()].filter((n) => n.startsWith('model/'));
      for (const f of digest.files) {
        const want = subjects.get(`model/${f.path}`);
        if (want !== f.sha256)
          problems.push(`model file ${f.path} ${want === undefined ? 'is not named in the attestation' : 'does not match its digest'}`);
      }
      if (named.length !== digest.files.length)
        problems.push(`the attestation names ${named.length} model files, the model has ${digest.files.length}`);
    }
    if (values.report !== undefined) {
      const got = await sha256Hex(new Uint8Array(await readFile(resolve(values.report))));
      if (subjects.get('report.json') !== got) problems.push('report.json does not match its digest');
    }
    if (problems.length > 0) {
      for (const p of problems) log(`FAIL: ${p}`);
      return 1;
    }
    log(
      `OK: signature valid; result ${statement.predicate.result}; ${statement.subject.length} subjects${values.model ? ', model matches' : ''}${values.report ? ', report matches' : ''}`,
    );
    return 0;
  } catch (err) {
    log(`FAIL: ${(err as Error).message}`);
    return 1;
  }
}
