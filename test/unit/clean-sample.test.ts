import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode as encodeJpeg } from 'jpeg-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePng, pngChunk } from '../../src/core/output/png.ts';
import { decodeImage } from '../../src/core/sample/decode.ts';
import { mixBases, readSample, SAMPLE_LIMITS, splitSample, type SampleFile } from '../../src/core/sample/sample.ts';
import { initWasmBackend } from '../../src/core/tfjs/backend.ts';
import { concat, deflateBytes } from '../../src/core/util/compress.ts';
import { Rng } from '../../src/core/util/rng.ts';
import { readSampleFolder, SampleFolderError } from '../../src/node/read-sample.ts';
import { nodeWasmPath } from '../../src/node/wasm-path.ts';

const GREY: [number, number, number] = [8, 8, 1];
const RGB: [number, number, number] = [8, 8, 3];

/** An 8×8 image whose pixel values encode (class, index), so a test can see which image went where. */
function pixels(k: number, i: number, channels: 1 | 3, side = 8): Float32Array {
  return Float32Array.from({ length: side * side * channels }, (_, p) => ((k * 16 + i * 4 + (p % 3)) % 256) / 255);
}

async function png(k: number, i: number, channels: 1 | 3 = 1, side = 8): Promise<Uint8Array> {
  return encodePng(side, side, channels, pixels(k, i, channels, side));
}

async function folder(classes: number, perClass: number, channels: 1 | 3 = 1): Promise<SampleFile[]> {
  const files: SampleFile[] = [];
  for (let k = 0; k < classes; k++)
    for (let i = 0; i < perClass; i++) files.push({ path: `${k}/${i}.png`, bytes: await png(k, i, channels) });
  return files;
}

/** A grey 8-bit PNG whose header says `side`×`side` but whose data inflates to `rawBytes`. */
async function bomb(side: number, rawBytes: number): Promise<Uint8Array> {
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, side);
  view.setUint32(4, side);
  header[8] = 8; // depth
  header[9] = 0; // grey
  const idat = await deflateBytes(new Uint8Array(rawBytes), 'deflate');
  return concat([
    Uint8Array.of(137, 80, 78, 71, 13, 10, 26, 10),
    pngChunk('IHDR', header),
    pngChunk('IDAT', idat),
    pngChunk('IEND', new Uint8Array(0)),
  ]);
}

beforeAll(async () => {
  await initWasmBackend({ wasmPath: nodeWasmPath() });
});

describe('readSample: a trusted sample folder', () => {
  it('reads one folder per class index, labels by folder, keeps pixel values and digests the bytes', async () => {
    const files = await folder(3, 2);
    const s = await readSample(files, GREY, 3);
    expect(s.perClass).toEqual([2, 2, 2]);
    expect(Array.from(s.images.labels)).toEqual([0, 0, 1, 1, 2, 2]);
    // Row 3 is class 1, image 1: its first pixel is (16 + 4) / 255, rounded to 8 bits by the PNG.
    expect(s.images.images[3 * 64]).toBeCloseTo(20 / 255, 5);
    expect(s.digest).toMatch(/^[0-9a-f]{64}$/);
    expect((await readSample([...files].reverse(), GREY, 3)).digest).toBe(s.digest);
    const other = [...files];
    other[0] = { path: other[0]!.path, bytes: await png(0, 3) };
    expect((await readSample(other, GREY, 3)).digest).not.toBe(s.digest);
  });

  it('skips what is not an image and resizes images of another size, saying so', async () => {
    const files = [
      ...(await folder(2, 1)),
      { path: '0/.DS_Store', bytes: new Uint8Array(3) },
      { path: 'README.txt', bytes: new Uint8Array(3) },
    ];
    files.push({ path: '1/big.png', bytes: await png(1, 0, 1, 16) });
    const s = await readSample(files, GREY, 2);
    expect(s.ignored).toBe(2);
    expect(s.resized).toBe(1);
    expect(s.perClass).toEqual([1, 2]);
  });

  it('decodes JPEG: grey ones as one channel, colour ones as three', async () => {
    const rgba = new Uint8Array(8 * 8 * 4);
    for (let p = 0; p < 64; p++) rgba.set([p * 3, p * 3, p * 3, 255], p * 4);
    const grey = encodeJpeg({ width: 8, height: 8, data: rgba }, 95).data;
    expect((await decodeImage('g.jpg', new Uint8Array(grey))).channels).toBe(1);
    for (let p = 0; p < 64; p++) rgba.set([250, 10, p * 3, 255], p * 4);
    const colour = encodeJpeg({ width: 8, height: 8, data: rgba }, 95).data;
    const decoded = await decodeImage('c.jpg', new Uint8Array(colour));
    expect(decoded.channels).toBe(3);
    expect(decoded.data[0]).toBeGreaterThan(0.9);
    expect(decoded.data[1]).toBeLessThan(0.15);
  });

  const refused: [string, () => Promise<SampleFile[]>, number, RegExp][] = [
    [
      'a folder that is not a class index',
      async () => [{ path: 'cat/0.png', bytes: await png(0, 0) }],
      3,
      /folder "cat" is not a class index of this 3-class model/,
    ],
    [
      'a class index past the model’s classes',
      async () => [{ path: '3/0.png', bytes: await png(0, 0) }],
      3,
      /folder "3" is not a class index/,
    ],
    ['a path that leaves the sample root', async () => [{ path: '../0/x.png', bytes: await png(0, 0) }], 3, /leaves the sample root/],
    ['an absolute path', async () => [{ path: '/etc/0.png', bytes: await png(0, 0) }], 3, /leaves the sample root/],
    ['an image outside any class folder', async () => [{ path: 'x.png', bytes: await png(0, 0) }], 3, /not in a class folder/],
    [
      'colour images for a grey model',
      async () => [{ path: '0/0.png', bytes: await png(0, 0, 3) }],
      3,
      /0\/0.png has 3 channels \(colour\), the model takes 1/,
    ],
    ['an empty sample', async () => [{ path: '0/notes.txt', bytes: new Uint8Array(1) }], 3, /no PNG or JPEG images/],
    [
      'bytes that are no image',
      async () => [{ path: '0/0.png', bytes: new TextEncoder().encode('not a png at all') }],
      3,
      /0\/0.png: neither a PNG nor a JPEG/,
    ],
    [
      'a truncated PNG',
      async () => [{ path: '0/0.png', bytes: (await png(0, 0)).subarray(0, 40) }],
      3,
      /0\/0.png: PNG (chunk IDAT runs past the end|ends before its IEND)/,
    ],
    [
      'a PNG whose data inflates past its header (a bomb)',
      async () => [{ path: '0/0.png', bytes: await bomb(8, 1 << 20) }],
      3,
      /inflates past the 72 bytes/,
    ],
    ['a PNG too large on a side', async () => [{ path: '0/0.png', bytes: await bomb(5000, 10) }], 3, /5000×5000 pixels, more than 1024/],
    [
      'more images than the cap',
      async () => Array.from({ length: SAMPLE_LIMITS.maxImages + 1 }, (_, i) => ({ path: `0/${i}.png`, bytes: new Uint8Array(8) })),
      3,
      /501 images, more than 500/,
    ],
    [
      'an image over the per-file cap',
      async () => [{ path: '0/0.png', bytes: new Uint8Array(SAMPLE_LIMITS.maxFileBytes + 1) }],
      3,
      /bytes, more than 2097152 per image/,
    ],
  ];
  for (const [what, make, classes, message] of refused) {
    it(`refuses ${what}`, async () => {
      await expect(readSample(await make(), GREY, classes)).rejects.toThrow(message);
    });
  }

  it('refuses transparent pixels, and a grey model’s grey JPEG near-miss still loads', async () => {
    const rgba = new Uint8Array(8 * 8 * 4).fill(255);
    rgba[3] = 0;
    const { encode } = await import('fast-png');
    const transparent = encode({ width: 8, height: 8, data: rgba, channels: 4, depth: 8 });
    await expect(readSample([{ path: '0/t.png', bytes: transparent }], RGB, 2)).rejects.toThrow(/transparent pixels/);
    const opaque = encode({ width: 8, height: 8, data: new Uint8Array(8 * 8 * 4).fill(255), channels: 4, depth: 8 });
    expect((await readSample([{ path: '0/o.png', bytes: opaque }], RGB, 2)).perClass).toEqual([1, 0]);
  });
});

describe('splitSample and mixBases', () => {
  it('holds back a third of each class, the same for the same seed, the rest used', async () => {
    const s = await readSample(await folder(2, 7), GREY, 2);
    const a = splitSample(s.images, 2, new Rng(5));
    const b = splitSample(s.images, 2, new Rng(5));
    expect(a.heldBack.count).toBe(4);
    expect(a.use.count).toBe(10);
    expect(Array.from(a.heldBack.labels)).toEqual([0, 0, 1, 1]);
    expect(a.heldBack.images).toEqual(b.heldBack.images);
    expect(splitSample(s.images, 2, new Rng(6)).heldBack.images).not.toEqual(a.heldBack.images);
    // A class of two is used whole: nothing to hold back from it.
    expect(splitSample((await readSample(await folder(2, 2), GREY, 2)).images, 2, new Rng(5)).heldBack.count).toBe(0);
  });

  it('puts real images the model calls right first, topped up with synthetic ones to the same size', () => {
    const px = 64;
    const real = { images: new Float32Array(3 * px).fill(1), labels: Int32Array.of(0, 0, 1), count: 3 };
    const synth = { images: new Float32Array(4 * px).fill(0.5), labels: Int32Array.of(0, 0, 1, 1), count: 4 };
    // Real row 1 is mispredicted (as class 1): it is no base of class 0.
    const mixed = mixBases(real, Int32Array.of(0, 1, 1), synth, 2, 2);
    expect(mixed.count).toBe(4);
    expect(Array.from(mixed.labels)).toEqual([0, 0, 1, 1]);
    expect([0, 1, 2, 3].map((r) => mixed.images[r * px])).toEqual([1, 0.5, 1, 0.5]);
  });
});

describe('readSampleFolder: the CLI’s folder walk', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'shapguard-sample-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('lists class folders with their relative paths', async () => {
    mkdirSync(join(dir, 'ok/0'), { recursive: true });
    mkdirSync(join(dir, 'ok/1'), { recursive: true });
    writeFileSync(join(dir, 'ok/0/a.png'), await png(0, 0));
    writeFileSync(join(dir, 'ok/1/b.png'), await png(1, 0));
    expect((await readSampleFolder(join(dir, 'ok'))).map((f) => f.path)).toEqual(['0/a.png', '1/b.png']);
  });

  it('refuses a missing folder, a file, a link and a tree nested too deep', async () => {
    await expect(readSampleFolder(join(dir, 'nope'))).rejects.toThrow(/no such folder/);
    writeFileSync(join(dir, 'file.png'), await png(0, 0));
    await expect(readSampleFolder(join(dir, 'file.png'))).rejects.toThrow(/not a folder/);
    mkdirSync(join(dir, 'link/0'), { recursive: true });
    symlinkSync('/etc/passwd', join(dir, 'link/0/x.png'));
    await expect(readSampleFolder(join(dir, 'link'))).rejects.toThrow(/0\/x.png is a link; links are not followed/);
    mkdirSync(join(dir, 'deep/0/a/b'), { recursive: true });
    await expect(readSampleFolder(join(dir, 'deep'))).rejects.toThrow(SampleFolderError);
  });
});
