import type { Bytes, Cursor } from './bytes.ts';
import { corrupt, unsupported } from './bytes.ts';

export type Datatype =
  | { kind: 'int'; size: number; signed: boolean; bigEndian: boolean }
  | { kind: 'float'; size: number; bigEndian: boolean }
  | { kind: 'string'; size: number }
  | { kind: 'vlen-string' }
  | { kind: 'other'; cls: number; size: number };

/** Reads a datatype message; classes a Keras file does not use for values come back as "other". */
export function readDatatype(c: Cursor): Datatype {
  const head = c.u8();
  const cls = head & 0x0f;
  const bits0 = c.u8();
  const bits1 = c.u8();
  c.u8();
  const size = c.u32();
  switch (cls) {
    case 0:
      c.skip(4);
      return { kind: 'int', size, signed: (bits0 & 0x08) !== 0, bigEndian: (bits0 & 1) !== 0 };
    case 1:
      c.skip(12);
      if (bits0 & 0x40) unsupported('VAX-ordered floating point');
      return { kind: 'float', size, bigEndian: (bits0 & 1) !== 0 };
    case 3:
      return { kind: 'string', size };
    case 9: {
      const isString = (bits0 & 0x0f) === 1;
      readDatatype(c); // base type
      if (!isString) return { kind: 'other', cls, size };
      void bits1;
      return { kind: 'vlen-string' };
    }
    default:
      return { kind: 'other', cls, size };
  }
}

/** Dimensions of a dataspace; null for the null dataspace (no elements), [] for a scalar. */
export function readDataspace(c: Cursor): number[] | null {
  const version = c.u8();
  const rank = c.u8();
  const flags = c.u8();
  let type = 1;
  if (version === 1) {
    c.skip(5);
    if (rank === 0) type = 0;
  } else if (version === 2) {
    type = c.u8();
  } else {
    corrupt(`dataspace version ${version}`);
  }
  if (type === 2) return null;
  if (rank > 32) corrupt(`dataspace rank ${rank}`);
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(c.length('dataspace dimension'));
  if (flags & 1) for (let i = 0; i < rank; i++) c.length();
  return type === 0 ? [] : dims;
}

export type Layout =
  | { kind: 'compact'; at: number; size: number }
  | { kind: 'contiguous'; address: number | null; size: number | null }
  | { kind: 'chunked'; btree: number | null; chunk: number[] };

/** Reads a data layout message (versions 1–4; chunked storage only with the version-1 B-tree index). */
export function readLayout(c: Cursor, base: number): Layout {
  const version = c.u8();
  if (version === 1 || version === 2) {
    const rank = c.u8();
    const cls = c.u8();
    c.skip(5);
    const address = cls === 0 ? null : c.address();
    const dims: number[] = [];
    for (let i = 0; i < rank; i++) dims.push(c.u32());
    if (cls === 0) {
      const size = c.u32();
      return { kind: 'compact', at: c.pos, size };
    }
    if (cls === 1) return { kind: 'contiguous', address: address === null ? null : base + address, size: null };
    return { kind: 'chunked', btree: address === null ? null : base + address, chunk: dims };
  }
  if (version !== 3 && version !== 4) corrupt(`data layout version ${version}`);
  const cls = c.u8();
  if (cls === 0) {
    const size = c.u16();
    return { kind: 'compact', at: c.pos, size };
  }
  if (cls === 1) {
    const address = c.address();
    return { kind: 'contiguous', address: address === null ? null : base + address, size: c.length() };
  }
  if (cls === 2) {
    if (version === 4)
      unsupported(
        'chunked datasets indexed by a version-4 layout (files written with libver="latest"); re-save with the default HDF5 settings',
      );
    const rank = c.u8();
    const address = c.address();
    const dims: number[] = [];
    for (let i = 0; i < rank; i++) dims.push(c.u32());
    return { kind: 'chunked', btree: address === null ? null : base + address, chunk: dims };
  }
  if (cls === 3) unsupported('virtual datasets (they refer to other files, which the reader never follows)');
  corrupt(`data layout class ${cls}`);
}

export interface Filter {
  id: number;
  values: number[];
}

/** Reads a filter pipeline message (versions 1 and 2). */
export function readFilters(c: Cursor): Filter[] {
  const version = c.u8();
  const n = c.u8();
  if (version === 1) c.skip(6);
  else if (version !== 2) corrupt(`filter pipeline version ${version}`);
  const filters: Filter[] = [];
  for (let i = 0; i < n; i++) {
    const id = c.u16();
    const nameLength = version === 1 || id >= 256 ? c.u16() : 0;
    c.u16(); // flags
    const count = c.u16();
    if (nameLength > 0) c.skip(version === 1 ? Math.ceil(nameLength / 8) * 8 : nameLength);
    const values: number[] = [];
    for (let k = 0; k < count; k++) values.push(c.u32());
    if (version === 1 && count % 2 === 1) c.skip(4);
    filters.push({ id, values });
  }
  return filters;
}

/** Reads `count` elements of a datatype stored at `at` into JS values (strings decoded as UTF-8). */
export function decodeValues(
  b: Bytes,
  type: Datatype,
  at: number,
  count: number,
  readVlen: (at: number) => Uint8Array,
): (string | number)[] {
  const out: (string | number)[] = [];
  const text = new TextDecoder('utf-8', { fatal: false });
  const size = type.kind === 'vlen-string' ? 4 + b.offsetSize + 4 : type.size;
  b.check(at, size * count, 'attribute value');
  for (let i = 0; i < count; i++) {
    const p = at + i * size;
    switch (type.kind) {
      case 'string': {
        const raw = b.slice(p, type.size);
        const end = raw.indexOf(0);
        out.push(text.decode(end < 0 ? raw : raw.subarray(0, end)).replace(/ +$/, ''));
        break;
      }
      case 'vlen-string':
        out.push(text.decode(readVlen(p)));
        break;
      case 'float':
        if (type.size === 4) out.push(b.view.getFloat32(p, !type.bigEndian));
        else if (type.size === 8) out.push(b.view.getFloat64(p, !type.bigEndian));
        else unsupported(`${type.size * 8}-bit floats`);
        break;
      case 'int': {
        if (type.size > 8) unsupported(`${type.size * 8}-bit integers`);
        let v = 0;
        for (let k = 0; k < type.size; k++) v += b.data[p + (type.bigEndian ? type.size - 1 - k : k)]! * 2 ** (8 * k);
        if (type.signed && v >= 2 ** (8 * type.size - 1)) v -= 2 ** (8 * type.size);
        out.push(v);
        break;
      }
      default:
        unsupported(`attribute values of datatype class ${type.cls}`);
    }
  }
  return out;
}
