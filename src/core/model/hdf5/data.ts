import { concat, deflateBytes, inflateCapped } from '../../util/compress.ts';
import { Cursor, H5_LIMITS, corrupt, unsupported } from './bytes.ts';
import type { DatasetInfo, H5File } from './file.ts';

/** A run of consecutive elements (in row-major order) stored at one file offset. */
export interface Run {
  element: number;
  count: number;
  fileOffset: number;
}

interface Chunk {
  offsets: number[];
  at: number;
  size: number;
  filterMask: number;
  /** File offsets of the B-tree fields holding the chunk's stored size and its address. */
  sizeField: number;
  addressField: number;
}

function count(shape: number[]): number {
  return shape.reduce((a, d) => a * d, 1);
}

function chunks(file: H5File, info: DatasetInfo, btree: number): Chunk[] {
  const rank = info.shape.length;
  const out: Chunk[] = [];
  const seen = new Set<number>();
  const stack = [btree];
  const b = file.b;
  while (stack.length > 0) {
    const at = stack.pop()!;
    if (seen.has(at)) corrupt(`chunk B-tree node at ${at} is reached twice (a cycle)`);
    seen.add(at);
    if (seen.size > H5_LIMITS.nodesPerWalk) corrupt(`chunk B-tree of ${info.path} has more than ${H5_LIMITS.nodesPerWalk} nodes`);
    if (b.ascii(at, 4, 'chunk B-tree node') !== 'TREE') corrupt(`chunk B-tree node at ${at} lacks its TREE signature`);
    const c = new Cursor(b, at + 4);
    if (c.u8() !== 1) corrupt(`B-tree node at ${at} is not a chunk node`);
    const level = c.u8();
    const entries = c.u16();
    c.skip(2 * b.offsetSize);
    for (let i = 0; i < entries; i++) {
      const sizeField = c.pos;
      const size = c.u32();
      const filterMask = c.u32();
      const offsets: number[] = [];
      for (let d = 0; d <= rank; d++) offsets.push(c.uint(8, 'chunk offset'));
      const addressField = c.pos;
      const child = c.address('chunk address');
      if (child === null) corrupt(`chunk B-tree node at ${at} has an undefined child`);
      if (level > 0) stack.push(file.base + child);
      else out.push({ offsets: offsets.slice(0, rank), at: file.base + child, size, filterMask, sizeField, addressField });
    }
  }
  return out;
}

/** A dataset's stored bytes: contiguous runs at file offsets, or per chunk, runs at offsets within it. */
type Stored = { kind: 'flat'; runs: Run[] } | { kind: 'chunked'; chunks: { chunk: Chunk; runs: Run[] }[]; rawBytes: number };

/**
 * Every stored run of the dataset's elements: for contiguous and compact data at file offsets, for
 * chunked data grouped by chunk at offsets within the (decoded) chunk. Runs follow the last dimension,
 * so a read or a write-back is a handful of copies.
 */
function storedRuns(file: H5File, info: DatasetInfo, elementSize: number): Stored {
  const total = count(info.shape);
  const layout = info.layout;
  if (layout.kind === 'compact') {
    if (layout.size < total * elementSize) corrupt(`compact dataset ${info.path} holds ${layout.size} bytes for ${total} elements`);
    return { kind: 'flat', runs: [{ element: 0, count: total, fileOffset: layout.at }] };
  }
  if (layout.kind === 'contiguous') {
    if (layout.address === null) return { kind: 'flat', runs: [] };
    const bytes = total * elementSize;
    if (layout.size !== null && layout.size < bytes) corrupt(`dataset ${info.path} stores ${layout.size} bytes for ${total} elements`);
    file.b.check(layout.address, bytes, `data of ${info.path}`);
    return { kind: 'flat', runs: [{ element: 0, count: total, fileOffset: layout.address }] };
  }
  const rank = info.shape.length;
  const chunkShape = layout.chunk.slice(0, rank);
  const rawBytes = count(chunkShape) * elementSize;
  if (layout.btree === null) return { kind: 'chunked', chunks: [], rawBytes };
  if (chunkShape.length !== rank || chunkShape.some((d) => d <= 0))
    corrupt(`dataset ${info.path} has an invalid chunk shape ${JSON.stringify(layout.chunk)}`);
  const strides = info.shape.map((_, d) => count(info.shape.slice(d + 1)));
  const cStrides = chunkShape.map((_, d) => count(chunkShape.slice(d + 1)));
  return {
    kind: 'chunked',
    rawBytes,
    chunks: chunks(file, info, layout.btree).map((ch) => {
      if (ch.offsets.some((o, d) => o % chunkShape[d]! !== 0 || o >= info.shape[d]!))
        corrupt(`chunk at ${ch.at} of ${info.path} has offsets outside the dataset`);
      const extent = chunkShape.map((sz, d) => Math.min(sz, info.shape[d]! - ch.offsets[d]!));
      const runs: Run[] = [];
      const rows = count(extent.slice(0, -1));
      for (let r = 0; r < rows; r++) {
        let rem = r;
        let dst = 0;
        let src = 0;
        for (let d = rank - 2; d >= 0; d--) {
          const idx = rem % extent[d]!;
          rem = Math.floor(rem / extent[d]!);
          dst += (ch.offsets[d]! + idx) * strides[d]!;
          src += idx * cStrides[d]!;
        }
        dst += ch.offsets[rank - 1] ?? 0;
        runs.push({ element: dst, count: extent[rank - 1] ?? 1, fileOffset: src * elementSize });
      }
      return { chunk: ch, runs };
    }),
  };
}

function shuffle(bytes: Uint8Array, elementSize: number): Uint8Array {
  const n = Math.floor(bytes.byteLength / elementSize);
  const out = bytes.slice();
  for (let k = 0; k < elementSize; k++) for (let i = 0; i < n; i++) out[k * n + i] = bytes[i * elementSize + k]!;
  return out;
}

function inflate(bytes: Uint8Array, limit: number, what: string): Promise<Uint8Array> {
  return inflateCapped(
    bytes,
    'deflate',
    limit,
    () => corrupt(`${what} inflates past its declared ${limit} bytes`),
    (m) => corrupt(`${what} is not valid deflate data: ${m}`),
  );
}

function unshuffle(bytes: Uint8Array, elementSize: number): Uint8Array {
  const n = Math.floor(bytes.byteLength / elementSize);
  const out = bytes.slice();
  for (let k = 0; k < elementSize; k++) for (let i = 0; i < n; i++) out[i * elementSize + k] = bytes[k * n + i]!;
  return out;
}

async function chunkBytes(file: H5File, info: DatasetInfo, ch: Chunk, rawSize: number): Promise<Uint8Array> {
  let bytes: Uint8Array = file.b.slice(ch.at, ch.size, `chunk of ${info.path}`);
  const active = info.filters.filter((_, i) => (ch.filterMask & (1 << i)) === 0);
  for (const f of [...active].reverse()) {
    if (f.id === 1) bytes = await inflate(bytes, rawSize, `a chunk of ${info.path}`);
    else if (f.id === 2) bytes = unshuffle(bytes, f.values[0] ?? 4);
    else if (f.id === 3) bytes = bytes.subarray(0, bytes.byteLength - 4);
    else unsupported(`dataset ${info.path} uses HDF5 filter ${f.id} (only deflate, shuffle and fletcher32 are read)`);
  }
  if (bytes.byteLength < rawSize) corrupt(`a chunk of ${info.path} holds ${bytes.byteLength} bytes, ${rawSize} expected`);
  return bytes;
}

/** Reads a float32 (or float64, narrowed) dataset into a Float32Array in row-major order. */
export async function readFloats(file: H5File, info: DatasetInfo): Promise<Float32Array> {
  if (info.type.kind !== 'float' || (info.type.size !== 4 && info.type.size !== 8)) {
    unsupported(`dataset ${info.path} is not float32 (${info.type.kind}${'size' in info.type ? `, ${info.type.size} bytes` : ''})`);
  }
  const size = info.type.size;
  const little = !info.type.bigEndian;
  const out = new Float32Array(count(info.shape));
  const stored = storedRuns(file, info, size);
  const put = (view: DataView, r: Run) => {
    for (let i = 0; i < r.count; i++) {
      const p = r.fileOffset + i * size;
      out[r.element + i] = size === 4 ? view.getFloat32(p, little) : view.getFloat64(p, little);
    }
  };
  if (stored.kind === 'flat') {
    for (const r of stored.runs) put(file.b.view, r);
    return out;
  }
  for (const { chunk, runs } of stored.chunks) {
    const bytes = await chunkBytes(file, info, chunk, stored.rawBytes);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (const r of runs) put(view, r);
  }
  return out;
}

/**
 * Where each element of a float32 dataset lies in the file, for overwriting values in place; null
 * when the stored bytes are filtered (compressed) and cannot be patched without rewriting.
 */
export function locateFloats(file: H5File, info: DatasetInfo): Run[] | null {
  if (info.type.kind !== 'float' || info.type.size !== 4 || info.type.bigEndian) return null;
  if (info.layout.kind === 'chunked' && info.filters.length > 0) return null;
  const stored = storedRuns(file, info, 4);
  if (stored.kind === 'flat') return stored.runs;
  const out: Run[] = [];
  for (const { chunk, runs } of stored.chunks) {
    if (chunk.size < stored.rawBytes) corrupt(`a chunk of ${info.path} holds ${chunk.size} bytes, ${stored.rawBytes} expected`);
    file.b.check(chunk.at, stored.rawBytes, `chunk of ${info.path}`);
    for (const r of runs) out.push({ ...r, fileOffset: chunk.at + r.fileOffset });
  }
  return out;
}

function writeUint(view: DataView, at: number, size: number, value: number): void {
  for (let i = 0; i < size; i++) view.setUint8(at + i, Math.floor(value / 256 ** i) % 256);
}

/**
 * The file with new values of a filtered (deflate and/or shuffle) chunked float32 dataset: each chunk is
 * decoded, updated and re-encoded. A chunk that fits its old space is written there; one that does not is
 * appended at the end of the file (its B-tree address and size, and the superblock's end address,
 * updated: superblocks 0–1 only, which carry no checksum). Null when that is impossible (other filters).
 */
export async function rewriteFilteredFloats(
  file: H5File,
  info: DatasetInfo,
  values: Float32Array,
  bytes: Uint8Array,
): Promise<Uint8Array | null> {
  if (info.layout.kind !== 'chunked' || info.type.kind !== 'float' || info.type.size !== 4 || info.type.bigEndian) return null;
  if (info.filters.some((f) => f.id !== 1 && f.id !== 2)) return null;
  const stored = storedRuns(file, info, 4);
  if (stored.kind === 'flat') return null;
  const head = bytes.slice();
  const view = new DataView(head.buffer);
  const tail: Uint8Array[] = [];
  let end = head.byteLength;
  for (const { chunk: ch, runs } of stored.chunks) {
    const raw = (await chunkBytes(file, info, ch, stored.rawBytes)).slice(0, stored.rawBytes);
    const rv = new DataView(raw.buffer);
    for (const r of runs) for (let i = 0; i < r.count; i++) rv.setFloat32(r.fileOffset + 4 * i, values[r.element + i]!, true);
    let encoded: Uint8Array = raw;
    for (const [i, f] of info.filters.entries()) {
      if ((ch.filterMask & (1 << i)) !== 0) continue;
      encoded = f.id === 2 ? shuffle(encoded, f.values[0] ?? 4) : await deflateBytes(encoded, 'deflate');
    }
    if (encoded.byteLength <= ch.size) {
      head.set(encoded, ch.at);
    } else {
      if (file.superblock.version > 1) return null;
      writeUint(view, ch.addressField, file.b.offsetSize, end - file.base);
      tail.push(encoded);
      end += encoded.byteLength;
    }
    view.setUint32(ch.sizeField, encoded.byteLength, true);
  }
  if (tail.length === 0) return head;
  const grown = concat([head, ...tail], end);
  const eofField = file.superblock.eofField;
  const eof = file.b.uint(eofField, file.b.offsetSize);
  writeUint(new DataView(grown.buffer), eofField, file.b.offsetSize, eof + (end - head.byteLength));
  return grown;
}
