import { beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync, cpSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { initWasmBackend } from '../../src/core/tfjs/backend.ts';
import { saveLayersModel } from '../../tools/fixtures/save.ts';
import { runCli } from '../helpers/cli.ts';
import { writeTinyModel } from '../helpers/tiny-model.ts';

type Json = {
  weightsManifest: { paths: string[]; weights: { name: string; dtype: string; shape: number[] }[] }[];
  modelTopology: { config: { layers: { class_name: string; config: Record<string, unknown> }[] } };
};

let good: string;

/** A copy of the good tiny model with `edit` applied to its folder. */
function variant(edit: (dir: string, json: Json) => void): string {
  const dir = mkdtempSync(join(tmpdir(), 'shapguard-bad-'));
  cpSync(good, dir, { recursive: true });
  const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as Json;
  edit(dir, json);
  return join(dir, 'model.json');
}

function shardOf(dir: string, json: Json): string {
  return join(dir, json.weightsManifest[0]!.paths[0]!);
}

describe('bad input gives a precise report, the right exit code and nothing else', () => {
  beforeAll(async () => {
    await initWasmBackend();
    good = await writeTinyModel();
  });

  const cases: { name: string; make: () => Promise<string> | string; verdict: 'error' | 'unsupported'; reason: RegExp }[] = [
    {
      name: 'malformed model.json',
      make: () => variant((d) => writeFileSync(join(d, 'model.json'), '{"modelTopology": ')),
      verdict: 'error',
      reason: /not valid JSON/,
    },
    {
      name: 'missing shard',
      make: () => variant((d, j) => rmSync(shardOf(d, j))),
      verdict: 'error',
      reason: /shard ".*" named in model.json is missing/,
    },
    {
      name: 'shard size not matching the manifest',
      make: () => variant((d, j) => writeFileSync(shardOf(d, j), readFileSync(shardOf(d, j)).subarray(0, 100))),
      verdict: 'error',
      reason: /the shards hold 100 bytes but model.json declares \d+ bytes/,
    },
    {
      name: 'non-float32 dtype',
      make: () =>
        variant((d, j) => {
          j.weightsManifest[0]!.weights[0]!.dtype = 'float16';
          writeFileSync(join(d, 'model.json'), JSON.stringify(j));
        }),
      verdict: 'unsupported',
      reason: /dtype float16; only float32/,
    },
    {
      name: 'unsupported layer',
      make: () =>
        variant((d, j) => {
          j.modelTopology.config.layers[2]!.class_name = 'Lambda';
          writeFileSync(join(d, 'model.json'), JSON.stringify(j));
        }),
      verdict: 'unsupported',
      reason: /layer type "Lambda" is not supported/,
    },
    {
      name: 'NaN weights',
      make: () =>
        variant((d, j) => {
          const b = readFileSync(shardOf(d, j));
          b.writeFloatLE(NaN, 12);
          writeFileSync(shardOf(d, j), b);
        }),
      verdict: 'error',
      reason: /non-finite value \(NaN or Infinity\)/,
    },
    {
      name: 'non-image input',
      make: async () => {
        const m = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [10], units: 4, activation: 'softmax' })] });
        const dir = mkdtempSync(join(tmpdir(), 'shapguard-dense-'));
        await saveLayersModel(m, dir);
        return join(dir, 'model.json');
      },
      verdict: 'unsupported',
      reason: /input shape \[null,10\] is not an image batch/,
    },
    {
      name: 'a path that does not exist',
      make: () => join(tmpdir(), 'no-such-dir', 'model.json'),
      verdict: 'error',
      reason: /cannot read/,
    },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const model = await c.make();
      const before = readFileSafe(model);
      const run = await runCli(['scan', model, '--out', '$OUT', '--json']);
      expect(run.report?.verdict, run.stderr).toBe(c.verdict);
      expect(run.report!.reason).toMatch(c.reason);
      expect(run.code).toBe(c.verdict === 'unsupported' ? 3 : 2);
      expect(run.repairedDir).toBeNull();
      // --json: stdout is the report and nothing else.
      expect(JSON.parse(run.stdout)).toEqual(run.report);
      // The input is never modified.
      expect(readFileSafe(model)).toEqual(before);
    });
  }

  it('rejects bad flags with a usage message and exit code 2', async () => {
    for (const args of [
      ['scan'],
      ['scan', 'x/model.json'],
      ['scan', 'm.json', '--out', '$OUT', '--seed', '-1'],
      ['scan', 'm.json', '--out', '$OUT', '--input-range', '1,0'],
      ['frobnicate'],
    ]) {
      const run = await runCli(args);
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/usage: shapguard scan/);
    }
  });
});

describe('the edges of the CLI: every input checked before the scan, one clear line, never a stack trace', () => {
  const noStack = (text: string) => expect(text).not.toMatch(/\n\s+at |node:internal/);

  it('refuses an --out that cannot hold the outputs before scanning: a file, a path through a file, /proc', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shapguard-outfile-'));
    const file = join(dir, 'taken');
    writeFileSync(file, 'not a folder');
    for (const [out, why] of [
      [file, /is a file, not a folder/],
      [join(file, 'sub'), /is a file, not a folder/],
      ['/proc/shapguard-nope', /cannot create \/proc\/shapguard-nope/],
    ] as const) {
      const run = await runCli(['scan', good, '--out', out]);
      expect(run.code, out).toBe(2);
      expect(run.stderr).toMatch(why);
      expect(run.stderr).not.toMatch(/verdict:/);
      noStack(run.stderr);
    }
    expect(readFileSync(file, 'utf8')).toBe('not a folder');
  });

  it('refuses a missing or unusable --sign-key before scanning, and writes nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shapguard-key-'));
    writeFileSync(join(dir, 'public.pem'), generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }));
    for (const [key, why] of [
      [join(dir, 'missing.pem'), /--sign-key .*missing\.pem: cannot read the key \(no such file or folder \(ENOENT\)\)/],
      [join(dir, 'public.pem'), /a public key cannot sign/],
    ] as const) {
      const run = await runCli(['scan', good, '--out', '$OUT', '--sign-key', key]);
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(why);
      expect(run.report).toBeNull();
      noStack(run.stderr);
    }
  });

  it('answers --help and --version, and says why a negative number is wrong', async () => {
    const help = await runCli(['scan', '--help']);
    expect([help.code, help.stderr]).toEqual([0, '']);
    expect(help.stdout).toMatch(/^usage: shapguard scan[\s\S]*--seed defaults to 1/);
    const version = await runCli(['--version']);
    expect([version.code, version.stdout]).toEqual([0, expect.stringMatching(/^shapguard \d+\.\d+\.\d+/)]);
    const budget = await runCli(['scan', good, '--out', '$OUT', '--budget', '-1']);
    expect(budget.code).toBe(2);
    expect(budget.stderr).toMatch(/^--budget -1: expected a number ≥ 0.001/);
  });

  it('names an empty folder and a missing path once, in words, in an error report with no input and the default seed 1', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'shapguard-empty-'));
    const run = await runCli(['scan', empty, '--out', '$OUT']);
    expect(run.code).toBe(2);
    expect(run.report!.reason).toMatch(/holds no model: neither model.json \(TensorFlow.js\) nor config.json and model.weights.h5/);
    expect(run.report!.input).toBeNull();
    expect(run.report!.config.seed).toBe(1);
    const missing = join(empty, 'nope', 'model.json');
    const gone = await runCli(['scan', missing, '--out', '$OUT']);
    expect(gone.report!.reason).toBe(`cannot read ${missing}: no such file or folder (ENOENT)`);
    expect(gone.stderr.split('cannot read').length - 1).toBe(1);
    noStack(gone.stderr);
  });
});

function readFileSafe(path: string): string | null {
  try {
    return readFileSync(path).toString('base64');
  } catch {
    return null;
  }
}
