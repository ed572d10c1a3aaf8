import { playerKey } from '../core/stages/players.ts';
import { parseArgs } from 'node:util';
import { resolve, sep } from 'node:path';
import { initWasmBackend } from '../core/tfjs/backend.ts';
import { exitCodeFor, type ScanReport } from '../core/output/report.ts';
import { scanModel, type ScanOptions } from '../core/scan/scan.ts';
import { renderReportHtml } from '../core/output/report-html.ts';
import { nodeWasmPath } from '../node/wasm-path.ts';
import { describeFsError, ModelPathError, ModelTooLargeError, readModelFiles } from '../node/read-model.ts';
import { writeFileAtomic, writeOutputs } from './write-outputs.ts';
import { OutDirError, prepareOutDir } from './out-dir.ts';
import { emptyReport } from '../core/scan/report-builder.ts';
import { DEFAULT_SEED } from '../core/scan/options.ts';
import { toSarif } from '../core/output/sarif.ts';
import { attestationSigner, importEd25519, type AttestationSigner } from '../core/output/attest.ts';
import { TOOL_VERSION } from '../version.ts';
import { verifyCommand, VERIFY_USAGE } from './verify-command.ts';
import { readFile } from 'node:fs/promises';
import { terminalProgress } from './progress-bar.ts';
import { readSampleFolder, SampleFolderError } from '../node/read-sample.ts';
import type { SampleFile } from '../core/sample/sample.ts';

const USAGE = `usage: shapguard scan <model.json | model.h5 | model.keras | model.onnx | keras-folder> --out <dir> [--budget <seconds>] [--max-evals <n>] [--seed <n>]
                      [--input-range <lo>,<hi>] [--layers <name,...>] [--clean-samples <dir>] [--json] [--sarif <file>]
                      [--sign-key <ed25519-private.pem>]
       ${VERIFY_USAGE.replace('usage: ', '')}
       shapguard --version

--seed defaults to ${DEFAULT_SEED} (as in the Action and the service).
Exit codes: 0 clean, 1 backdoor (repaired or not), 2 error or incomplete, 3 unsupported input.`;

class UsageError extends Error {}

function number(flag: string, value: string | undefined, integer: boolean, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min) {
    throw new UsageError(`--${flag} ${value}: expected ${integer ? 'an integer' : 'a number'} ≥ ${min}`);
  }
  return n;
}

const VALUE_FLAGS = new Set([
  '--out',
  '--budget',
  '--max-evals',
  '--seed',
  '--input-range',
  '--layers',
  '--sarif',
  '--sign-key',
  '--clean-samples',
]);

/**
 * `--budget -1` as `--budget=-1`: parseArgs reads a value that starts with a dash as a missing one ("argument is
 * ambiguous"), where the user meant a (bad) number and should hear why it is bad.
 */
export function joinDashValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (VALUE_FLAGS.has(a) && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

function parseScan(argv: string[]): {
  model: string;
  out: string;
  json: boolean;
  sarif: string | undefined;
  signKey: string | undefined;
  cleanSamples: string | undefined;
  options: Omit<ScanOptions, 'toolVersion'>;
} {
  const { values, positionals } = parseArgs({
    args: joinDashValues(argv),
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      budget: { type: 'string' },
      'max-evals': { type: 'string' },
      seed: { type: 'string' },
      'input-range': { type: 'string' },
      layers: { type: 'string' },
      json: { type: 'boolean', default: false },
      sarif: { type: 'string' },
      'sign-key': { type: 'string' },
      'clean-samples': { type: 'string' },
    },
  });
  if (positionals.length !== 1) throw new UsageError('scan takes exactly one model path');
  if (values.out === undefined) throw new UsageError('--out <dir> is required');
  let inputRange: [number, number] | undefined;
  if (values['input-range'] !== undefined) {
    const parts = values['input-range'].split(',').map(Number);
    if (parts.length !== 2 || !parts.every(Number.isFinite) || !(parts[0]! < parts[1]!)) {
      throw new UsageError(`--input-range ${values['input-range']}: expected <lo>,<hi> with lo < hi`);
    }
    inputRange = [parts[0]!, parts[1]!];
  }
  const layers = values.layers
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return {
    model: positionals[0]!,
    out: values.out,
    json: values.json ?? false,
    sarif: values.sarif,
    signKey: values['sign-key'],
    cleanSamples: values['clean-samples'],
    options: {
      budgetSeconds: number('budget', values.budget, false, 0.001),
      maxEvals: number('max-evals', values['max-evals'], true, 1),
      seed: number('seed', values.seed, true, 0),
      inputRange,
      layers: layers && layers.length > 0 ? layers : undefined,
    },
  };
}

/** A --sign-key (or SHAPGUARD_SIGNING_KEY) that cannot sign. */
class SigningKeyError extends Error {
  override readonly name = 'SigningKeyError';
}

/** The attestation signer from --sign-key <pem file> or SHAPGUARD_SIGNING_KEY (the PEM itself), checked now; never logged. */
async function signerFor(path: string | undefined): Promise<AttestationSigner | null> {
  const from = path !== undefined ? `--sign-key ${path}` : 'SHAPGUARD_SIGNING_KEY';
  let pem: string | undefined;
  try {
    pem = path !== undefined ? await readFile(resolve(path), 'utf8') : process.env.SHAPGUARD_SIGNING_KEY;
  } catch (err) {
    throw new SigningKeyError(`${from}: cannot read the key (${describeFsError(err)})`);
  }
  if (!pem) return null;
  try {
    const { kind } = await importEd25519(pem);
    if (kind !== 'private') throw new Error('a public key cannot sign; give the Ed25519 private key (PKCS#8 PEM)');
  } catch (err) {
    throw new SigningKeyError(`${from}: ${(err as Error).message}`);
  }
  return attestationSigner(pem, 'the signing key');
}

function summary(r: ScanReport): string {
  const lines = [`verdict: ${r.verdict}${r.reason ? ` (${r.reason})` : ''}`];
  if (r.detection && r.detection.flagged.length > 0)
    lines.push(
      `flagged target class(es): ${r.detection.flagged.join(', ')}${r.detection.flaggedBy === 'pair-universality' ? " (by the pair triggers' universality)" : r.detection.flaggedBy === 'head-tendency' ? " (by the classifier head's tendency, with a smallish trigger)" : ''}`,
    );
  if (r.repair && r.repair.status !== 'not-needed') {
    lines.push(`repair: ${r.repair.status}${r.repair.reason ? ` (${r.repair.reason})` : ''}`);
    if (r.repair.pruned.length > 0) lines.push(`pruned: ${r.repair.pruned.map(playerKey).join(', ')}`);
  }
  lines.push(`evaluations: ${Math.round(r.budget.evaluationsUsed)}, time: ${r.timings.totalSeconds.toFixed(1)} s`);
  return lines.join('\n');
}

/** `shapguard scan`: the CLI contract other tooling calls; see USAGE. Returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE + '\n');
    return command === undefined ? 2 : 0;
  }
  if (command === '--version' || command === '-v') {
    process.stdout.write(`shapguard ${TOOL_VERSION}\n`);
    return 0;
  }
  if (command === 'verify') return verifyCommand(rest, (line) => process.stdout.write(line + '\n'));
  if (command !== 'scan') {
    process.stderr.write(`unknown command "${command}"\n${USAGE}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  let args: ReturnType<typeof parseScan>;
  try {
    args = parseScan(rest);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  // Every input is checked before the scan starts: a bad --out or key found afterwards would waste the scan.
  let sign: AttestationSigner | null;
  try {
    await prepareOutDir(resolve(args.out));
    sign = await signerFor(args.signKey);
  } catch (err) {
    if (!(err instanceof OutDirError || err instanceof SigningKeyError)) throw err;
    process.stderr.write(`${err.message}\n`);
    return 2;
  }
  const showProgress = !args.json && process.stderr.isTTY === true;
  const progress = showProgress ? terminalProgress(process.stderr) : undefined;
  let cleanSample: SampleFile[] | undefined;
  if (args.cleanSamples !== undefined) {
    try {
      cleanSample = await readSampleFolder(resolve(args.cleanSamples));
    } catch (err) {
      if (!(err instanceof SampleFolderError)) throw err;
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
  }
  await initWasmBackend({ wasmPath: nodeWasmPath() });
  const scanOptions = { ...args.options, ...(cleanSample ? { cleanSample } : {}), toolVersion: TOOL_VERSION };
  let read: Awaited<ReturnType<typeof readModelFiles>> | null = null;
  let readError = '';
  try {
    read = await readModelFiles(resolve(args.model));
  } catch (err) {
    readError =
      err instanceof ModelTooLargeError || err instanceof ModelPathError
        ? err.message
        : `cannot read ${args.model}: ${describeFsError(err)}`;
  }
  // A model that cannot be read still gets an error report, so a pipeline always finds one.
  const scanned = read
    ? await scanModel(read.files, {
        ...scanOptions,
        entry: read.entry,
        onProgress: progress,
        onInternalError: (e) => {
          if (process.env.SHAPGUARD_DEBUG) console.error(e);
        },
      })
    : { report: { ...emptyReport(scanOptions), reason: readError }, repaired: null, evidence: [] };
  const { report, repaired, evidence } = scanned;
  progress?.('save', 0);
  const json = JSON.stringify(report, null, 2) + '\n';
  await writeOutputs(resolve(args.out), json, repaired, await renderReportHtml(report, { evidence, source: args.model }));
  if (sign) {
    const envelope = await sign(report, new TextEncoder().encode(json));
    await writeFileAtomic(resolve(args.out, 'attestation.dsse.json'), JSON.stringify(envelope, null, 2) + '\n');
  }
  if (args.sarif !== undefined)
    await writeFileAtomic(resolve(args.sarif), JSON.stringify(toSarif(report, args.model.split(sep).join('/')), null, 2) + '\n');
  progress?.('save', 1);
  if (args.json) process.stdout.write(json);
  else
    process.stderr.write(
      summary(report) +
        `\nreport: ${resolve(args.out, 'report.json')}${repaired ? `\nrepaired model: ${resolve(args.out, 'repaired')}` : ''}\n`,
    );
  return exitCodeFor(report.verdict);
}

process.exitCode = await main(process.argv.slice(2));
