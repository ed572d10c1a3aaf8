import { playerKey } from '../core/stages/players.ts';
import { parseArgs } from 'node:util';
import { resolve, sep } from 'node:path';
import { initWasmBackend } from '../core/tfjs/backend.ts';
import { exitCodeFor, type ScanReport } from '../core/output/report.ts';
import { scanModel, type ScanOptions } from '../core/scan/scan.ts';
import { renderReportHtml } from '../core/output/report-html.ts';
import { nodeWasmPath } from '../node/wasm-path.ts';
import { ModelTooLargeError, readModelFiles } from '../node/read-model.ts';
import { writeFileAtomic, writeOutputs } from './write-outputs.ts';
import { toSarif } from '../core/output/sarif.ts';
import { attestationSigner } from '../core/output/attest.ts';
import { TOOL_VERSION } from '../version.ts';
import { verifyCommand, VERIFY_USAGE } from './verify-command.ts';
import { readFile } from 'node:fs/promises';
import { terminalProgress } from './progress-bar.ts';
import { readSampleFolder, SampleFolderError } from '../node/read-sample.ts';
import type { SampleFile } from '../core/sample/sample.ts';

const USAGE = `usage: shapguard scan <model.json | model.h5 | model.keras | keras-folder> --out <dir> [--budget <seconds>] [--max-evals <n>] [--seed <n>]
                      [--input-range <lo>,<hi>] [--layers <name,...>] [--clean-samples <dir>] [--json] [--sarif <file>]
                      [--sign-key <ed25519-private.pem>]
       ${VERIFY_USAGE.replace('usage: ', '')}

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
    args: argv,
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

function summary(r: ScanReport): string {
  const lines = [`verdict: ${r.verdict}${r.reason ? ` (${r.reason})` : ''}`];
  if (r.detection && r.detection.flagged.length > 0) lines.push(`flagged target class(es): ${r.detection.flagged.join(', ')}`);
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
  if (command === 'verify') return verifyCommand(rest, (line) => process.stdout.write(line + '\n'));
  if (command !== 'scan') {
    process.stderr.write(`unknown command "${command}"\n${USAGE}\n`);
    return 2;
  }
  let args: ReturnType<typeof parseScan>;
  try {
    args = parseScan(rest);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
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
  let files: Map<string, Uint8Array>;
  let entry: string;
  let readError: string | null = null;
  try {
    ({ files, entry } = await readModelFiles(resolve(args.model)));
  } catch (err) {
    files = new Map();
    entry = 'model.json';
    readError =
      err instanceof ModelTooLargeError
        ? err.message
        : `cannot read ${args.model}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
    process.stderr.write(`${readError}\n`);
  }
  const { report, repaired, evidence } = await scanModel(files, {
    ...args.options,
    ...(cleanSample ? { cleanSample } : {}),
    entry,
    toolVersion: TOOL_VERSION,
    onProgress: progress,
    onInternalError: (e) => {
      if (process.env.SHAPGUARD_DEBUG) console.error(e);
    },
  });
  if (files.size === 0) {
    report.verdict = 'error';
    report.reason = readError ?? `cannot read ${args.model}`;
  }
  progress?.('save', 0);
  const json = JSON.stringify(report, null, 2) + '\n';
  await writeOutputs(resolve(args.out), json, repaired, await renderReportHtml(report, evidence));
  // The signing key comes from --sign-key <pem file> or SHAPGUARD_SIGNING_KEY (the PEM itself); never logged.
  try {
    const keyPem = args.signKey !== undefined ? await readFile(resolve(args.signKey), 'utf8') : process.env.SHAPGUARD_SIGNING_KEY;
    if (keyPem) {
      const envelope = await attestationSigner(keyPem, 'the signing key')(report, new TextEncoder().encode(json));
      await writeFileAtomic(resolve(args.out, 'attestation.dsse.json'), JSON.stringify(envelope, null, 2) + '\n');
    }
  } catch (err) {
    process.stderr.write(`cannot sign the attestation: ${(err as Error).message}\n`);
    return 2;
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
