import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initWasmBackend } from '../../src/core/tfjs/backend.ts';
import { ShapguardError } from '../../src/core/errors.ts';
import { H5_LIMITS } from '../../src/core/model/hdf5/bytes.ts';
import { H5File } from '../../src/core/model/hdf5/file.ts';
import { MSG } from '../../src/core/model/hdf5/object-header.ts';
import { KERAS_LIMITS } from '../../src/core/model/keras/load.ts';
import { readEntry, readZip, ZIP_LIMITS } from '../../src/core/model/keras/zip.ts';
import { loadModel } from '../../src/core/model/load.ts';
import { nodeWasmPath } from '../../src/node/wasm-path.ts';
import { runCli } from '../helpers/cli.ts';
import { makeZip } from '../helpers/zip.ts';

// Hostile Keras files: each case must end in a precise error (or "unsupported"), never a crash or a hang,
// and each has a benign near-miss that must still load, so the check is not simply refusing everything.
const KERAS = resolve('test/fixtures/keras');
const read = (f: string) => new Uint8Array(readFileSync(join(KERAS, f)));
const h5 = read('mnist-clean-1.h5');
const keras = read('mnist-clean-1.keras');

async function load(name: string, bytes: Uint8Array) {
  const m = await loadModel(new Map([[name, bytes]]), name);
  m.model.dispose();
  return m;
}

async function refused(name: string, bytes: Uint8Array, kind: 'input' | 'unsupported', message: RegExp): Promise<void> {
  const err = await load(name, bytes).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ShapguardError);
  expect((err as ShapguardError).kind).toBe(kind);
  expect((err as ShapguardError).message).toMatch(message);
}

/** Byte offset of the only occurrence of `needle` (so a patch cannot hit the wrong place). */
function onlyIndex(hay: Uint8Array, needle: Uint8Array): number {
  const found: number[] = [];
  for (let i = 0; i + needle.length <= hay.length && found.length < 2; i++) if (needle.every((b, k) => hay[i + k] === b)) found.push(i);
  expect(found.length).toBe(1);
  return found[0]!;
}

function u64s(...values: number[]): Uint8Array {
  const b = new Uint8Array(8 * values.length);
  const v = new DataView(b.buffer);
  values.forEach((x, i) => v.setBigUint64(8 * i, BigInt(x), true));
  return b;
}

/** The .keras archive's entries, with `change` applied, re-zipped. */
async function rezip(change: (name: string, data: Uint8Array) => Uint8Array, opts: { deflate?: boolean } = {}): Promise<Uint8Array> {
  const entries = readZip(keras);
  const out = [];
  for (const e of entries) out.push({ name: e.name, data: change(e.name, await readEntry(keras, e)), deflate: opts.deflate });
  return makeZip(out);
}

beforeAll(async () => {
  await initWasmBackend({ wasmPath: nodeWasmPath() });
});

const saved = { ...KERAS_LIMITS, ...ZIP_LIMITS, attributeBytes: H5_LIMITS.attributeBytes };
afterEach(() => {
  KERAS_LIMITS.fileBytes = saved.fileBytes;
  ZIP_LIMITS.entries = saved.entries;
  ZIP_LIMITS.uncompressedBytes = saved.uncompressedBytes;
  H5_LIMITS.attributeBytes = saved.attributeBytes;
});

describe('HDF5 files', () => {
  it('near-miss: the intact file, and one behind a 512-byte user block, load', async () => {
    expect((await load('m.h5', h5)).weights.length).toBeGreaterThan(0);
    expect((await load('u.h5', read('userblock.h5'))).weights.length).toBeGreaterThan(0);
  });

  it('truncated files are named as truncated', async () => {
    await refused('m.h5', h5.subarray(0, h5.length - 1000), 'input', /declares \d+ bytes but the file has \d+ \(truncated\)/);
    await refused('m.h5', h5.subarray(0, 40), 'input', /outside the 40-byte file|truncated/);
  });

  it('a wrong signature is not an HDF5 file', async () => {
    const bad = h5.slice();
    bad[1] = 0x58;
    await refused('m.h5', bad, 'input', /no HDF5 signature/);
  });

  it('a dataset whose declared shape needs more bytes than the file has is refused before reading', async () => {
    // The first dimension of logits/kernel, in its (version 1) dataspace message, multiplied by 1000.
    const file = new H5File(h5);
    const space = file.open('model_weights/logits/logits/kernel:0').messages.find((m) => m.type === MSG.dataspace)!;
    const dim = new DataView(h5.buffer, h5.byteOffset).getUint32(space.at + 8, true);
    const bad = h5.slice();
    bad.set(u64s(dim * 1000), space.at + 8);
    await refused('m.h5', bad, 'input', /stores \d+ bytes for \d+ elements/);
  });

  it('an attribute that declares more data than its message holds is refused', async () => {
    // layer_names' dataspace (after the version-1 attribute header, its padded name and datatype) lies.
    const file = new H5File(h5);
    const attr = file
      .open('model_weights')
      .messages.find((m) => m.type === MSG.attribute && new TextDecoder().decode(h5.subarray(m.at + 8, m.at + 19)) === 'layer_names')!;
    const v = new DataView(h5.buffer, h5.byteOffset);
    const pad = (n: number) => Math.ceil(n / 8) * 8;
    const space = attr.at + 8 + pad(v.getUint16(attr.at + 2, true)) + pad(v.getUint16(attr.at + 4, true));
    const bad = h5.slice();
    bad.set(u64s(8_000_000), space + 8);
    await refused('m.h5', bad, 'input', /declares (more data than its message holds|\d+ bytes, over the)/);
  });

  it('an attribute over the size cap is refused, and one just under it loads', async () => {
    H5_LIMITS.attributeBytes = 1000; // model_config is a few kB
    await refused('m.h5', h5, 'input', /over the 1000-byte cap/);
    H5_LIMITS.attributeBytes = 64 * 1024;
    await load('m.h5', h5);
  });

  it('external links and virtual datasets are never followed: unsupported', async () => {
    await refused('x.h5', read('external-link.h5'), 'unsupported', /points into another file \(external link\)/);
    await refused('v.h5', read('virtual-dataset.h5'), 'unsupported', /virtual datasets/);
  });

  it('a file over the size cap is refused, one at the cap loads', async () => {
    KERAS_LIMITS.fileBytes = h5.length - 1;
    await refused('m.h5', h5, 'input', /over the \d+-byte limit/);
    KERAS_LIMITS.fileBytes = h5.length;
    await load('m.h5', h5);
  });

  it('a weights-only HDF5 file is not mistaken for a model', async () => {
    await refused('w.h5', h5WithoutConfig(), 'input', /no model_config attribute/);
  });
});

function h5WithoutConfig(): Uint8Array {
  // Renaming the attribute keeps every structure valid while the file stops being a full model.
  const bad = h5.slice();
  const at = onlyIndex(bad, new TextEncoder().encode('model_config\0'));
  bad.set(new TextEncoder().encode('model_cfgxyz'), at);
  return bad;
}

describe('.keras archives', () => {
  it('near-miss: re-zipped with every entry deflated, the archive loads', async () => {
    expect((await load('m.keras', await rezip((_, d) => d, { deflate: true }))).weights.length).toBeGreaterThan(0);
  });

  it('a zip bomb (an entry inflating past its declared size) stops at the declared size', async () => {
    const bomb = makeZip([
      { name: 'config.json', data: new Uint8Array(64 * 1024 * 1024).fill(32), deflate: true, declaredSize: 6000 },
      { name: 'model.weights.h5', data: new Uint8Array(10) },
    ]);
    expect(bomb.length).toBeLessThan(200_000);
    await refused('b.keras', bomb, 'input', /inflates past its declared 6000 bytes/);
  });

  it('entries declaring more than the uncompressed cap are refused before inflating', async () => {
    ZIP_LIMITS.uncompressedBytes = keras.length - 1000;
    await refused('m.keras', keras, 'input', /more than \d+ uncompressed bytes/);
    ZIP_LIMITS.uncompressedBytes = keras.length;
    await load('m.keras', keras);
  });

  it('too many entries are refused; the limit itself loads', async () => {
    const entries = readZip(keras);
    const base = await Promise.all(entries.map(async (e) => ({ name: e.name, data: await readEntry(keras, e) })));
    const padded = (n: number) =>
      makeZip([...base, ...Array.from({ length: n - base.length }, (_, i) => ({ name: `assets/${i}`, data: new Uint8Array(1) }))]);
    await refused('m.keras', padded(ZIP_LIMITS.entries + 1), 'input', /entries, over the limit of 64/);
    await load('m.keras', padded(ZIP_LIMITS.entries));
  });

  it('a corrupted entry fails its CRC check; truncation and a missing directory are named', async () => {
    const bad = keras.slice();
    const weights = readZip(keras).find((e) => e.name === 'model.weights.h5')!;
    bad[weights.data + 5000] = bad[weights.data + 5000]! ^ 0xff;
    await refused('m.keras', bad, 'input', /fails its CRC-32 check/);
    await refused('m.keras', keras.subarray(0, keras.length - 30), 'input', /no end-of-central-directory record/);
    await refused('m.keras', keras.subarray(0, keras.length / 2), 'input', /no end-of-central-directory record/);
  });

  it('a Lambda layer in config.json is unsupported and named; the same config without it loads', async () => {
    const withLambda = await rezip((name, data) => {
      if (name !== 'config.json') return data;
      const cfg = JSON.parse(new TextDecoder().decode(data)) as { config: { layers: unknown[] } };
      cfg.config.layers.splice(2, 0, {
        module: 'keras.layers',
        class_name: 'Lambda',
        config: { name: 'evil', function: { class_name: '__lambda__', config: { code: 'b64...' } } },
        registered_name: null,
      });
      return new TextEncoder().encode(JSON.stringify(cfg));
    });
    await refused('m.keras', withLambda, 'unsupported', /layer type "Lambda" is not supported/);
    await load('m.keras', await rezip((_, d) => d));
  });
});

describe('through the CLI: a report, the right exit code, no repaired model, no crash', () => {
  const dir = mkdtempSync(join(tmpdir(), 'shapguard-hostile-'));
  it.each([
    ['truncated.h5', () => h5.subarray(0, 5000), 'error', 2],
    ['external-link.h5', () => read('external-link.h5'), 'unsupported', 3],
    [
      'bomb.keras',
      () =>
        makeZip([
          { name: 'config.json', data: new Uint8Array(8 << 20), deflate: true, declaredSize: 100 },
          { name: 'model.weights.h5', data: new Uint8Array(1) },
        ]),
      'error',
      2,
    ],
    ['not-a-model.keras', () => new TextEncoder().encode('hello'), 'error', 2],
  ] as const)('%s', async (name, bytes, verdict, code) => {
    writeFileSync(join(dir, name), bytes());
    const run = await runCli(['scan', join(dir, name), '--out', '$OUT']);
    expect(run.report?.verdict, run.stderr).toBe(verdict);
    expect(run.report!.reason).toBeTruthy();
    expect(run.code).toBe(code);
    expect(run.repairedDir).toBeNull();
  });
});
