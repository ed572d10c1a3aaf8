import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { importEd25519, verifyEnvelope, type Statement } from '../core/output/attest.ts';
import { digestFiles, sha256Hex } from '../core/util/digest.ts';
import { readModelFiles } from '../node/read-model.ts';

export const VERIFY_USAGE =
  'usage: shapguard verify <attestation.dsse.json> --key <public-key.pem> [--model <path>] [--report <report.json>] [--integrity-only]';

const VERIFY_HELP = `${VERIFY_USAGE}

Exit 0 only when the signature and every digest given match and what was checked may ship: the model of a
PASSED (clean) scan, or the repaired files (--model <out>/repaired) of a scan that repaired it.
--integrity-only: check the signature and digests alone, whatever the result. Exit 1 otherwise, 2 for bad usage.`;

/**
 * `shapguard verify`: checks the attestation's signature with the public key, that the model and report
 * given match the digests it names, and (unless --integrity-only) that the scan lets that model ship, so a
 * "verify before shipping" step cannot pass a backdoored upload whose attestation is genuine. Returns 0, 1
 * or 2 (usage).
 */
export async function verifyCommand(argv: string[], log: (line: string) => void): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    log(VERIFY_HELP);
    return 0;
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        key: { type: 'string' },
        model: { type: 'string' },
        report: { type: 'string' },
        'integrity-only': { type: 'boolean', default: false },
      },
    });
  } catch (err) {
    log(`${(err as Error).message}\n${VERIFY_USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
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
    // The model given is checked against the scanned upload's files (model/) or, for a repair, the repaired ones.
    let which: 'model' | 'repaired' | null = null;
    if (values.model !== undefined) {
      const { files } = await readModelFiles(resolve(values.model));
      const digest = await digestFiles(files);
      const matches = (prefix: string) => {
        const named = [...subjects.keys()].filter((n) => n.startsWith(`${prefix}/`));
        return named.length === digest.files.length && digest.files.every((f) => subjects.get(`${prefix}/${f.path}`) === f.sha256);
      };
      which = matches('model') ? 'model' : matches('repaired') ? 'repaired' : null;
      if (which === null) {
        const named = [...subjects.keys()].filter((n) => n.startsWith('model/'));
        for (const f of digest.files) {
          const want = subjects.get(`model/${f.path}`);
          if (want !== f.sha256)
            problems.push(`model file ${f.path} ${want === undefined ? 'is not named in the attestation' : 'does not match its digest'}`);
        }
        if (named.length !== digest.files.length)
          problems.push(`the attestation names ${named.length} model files, the model has ${digest.files.length}`);
        if (problems.length === 0) problems.push('the model matches neither the scanned files nor the repaired ones');
      }
    }
    if (values.report !== undefined) {
      const got = await sha256Hex(new Uint8Array(await readFile(resolve(values.report))));
      if (subjects.get('report.json') !== got) problems.push('report.json does not match its digest');
    }
    if (problems.length > 0) {
      for (const p of problems) log(`FAIL: ${p}`);
      return 1;
    }
    const result = statement.predicate.result;
    const repairedOk = which === 'repaired' && statement.predicate.configuration[0]?.annotations.repair === 'repaired';
    const matched = `${values.model ? `, ${which === 'repaired' ? 'repaired model' : 'model'} matches` : ''}${values.report ? ', report matches' : ''}`;
    const line = `signature valid; result ${result}; ${statement.subject.length} subjects${matched}`;
    if (values['integrity-only'] || repairedOk || (result === 'PASSED' && which !== 'repaired')) {
      log(`OK: ${line}${repairedOk ? '; the repaired model may ship, the upload may not' : ''}`);
      return 0;
    }
    log(
      `FAIL: ${line}; ${which === 'repaired' ? 'the scan did not certify this repair' : `the scan's result is ${result}: this model is not to be shipped`} (--integrity-only checks the signature and digests alone)`,
    );
    return 1;
  } catch (err) {
    log(`FAIL: ${(err as Error).message}`);
    return 1;
  }
}
