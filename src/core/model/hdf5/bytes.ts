import { errorsIn } from '../../errors.ts';

const hdf5 = errorsIn('HDF5');
/** A malformed or hostile HDF5 structure: reported as an input error with where it was found. */
export const corrupt: (message: string) => never = hdf5.invalid;
/** An HDF5 feature the reader deliberately does not follow (external files, virtual datasets, …). */
export const unsupported: (message: string) => never = hdf5.unsupported;

/**
 * Bounds-checked little-endian reads over the whole file. Every read that would leave the file is an
 * error naming the offset, so a lying size or address can never read past the bytes we were given.
 */
export class Bytes {
  readonly view: DataView;
  constructor(
    readonly data: Uint8Array,
    readonly offsetSize: number,
    readonly lengthSize: number,
  ) {
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  check(at: number, n: number, what: string): void {
    if (!Number.isSafeInteger(at) || !Number.isSafeInteger(n) || at < 0 || n < 0 || at + n > this.data.byteLength) {
      corrupt(`${what} at byte ${at} (+${n}) lies outside the ${this.data.byteLength}-byte file`);
    }
  }

  uint(at: number, size: number, what = 'integer'): number {
    this.check(at, size, what);
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + this.data[at + i]!;
    if (!Number.isSafeInteger(v)) corrupt(`${what} at byte ${at} is too large`);
    return v;
  }

  /** An address field; all-ones means "undefined" and comes back as null. */
  address(at: number, what = 'address'): number | null {
    this.check(at, this.offsetSize, what);
    let ones = true;
    for (let i = 0; i < this.offsetSize; i++) if (this.data[at + i] !== 0xff) ones = false;
    return ones ? null : this.uint(at, this.offsetSize, what);
  }

  ascii(at: number, n: number, what = 'text'): string {
    this.check(at, n, what);
    return String.fromCharCode(...this.data.subarray(at, at + n));
  }

  slice(at: number, n: number, what = 'data'): Uint8Array {
    this.check(at, n, what);
    return this.data.subarray(at, at + n);
  }
}

/** A read position that walks forward through one structure. */
export class Cursor {
  constructor(
    readonly b: Bytes,
    public pos: number,
  ) {}

  u8(): number {
    return this.uint(1);
  }
  u16(): number {
    return this.uint(2);
  }
  u32(): number {
    return this.uint(4);
  }
  uint(size: number, what?: string): number {
    const v = this.b.uint(this.pos, size, what);
    this.pos += size;
    return v;
  }
  address(what?: string): number | null {
    const v = this.b.address(this.pos, what);
    this.pos += this.b.offsetSize;
    return v;
  }
  length(what?: string): number {
    return this.uint(this.b.lengthSize, what);
  }
  skip(n: number): void {
    this.b.check(this.pos, n, 'field');
    this.pos += n;
  }
  bytes(n: number, what?: string): Uint8Array {
    const v = this.b.slice(this.pos, n, what);
    this.pos += n;
    return v;
  }
  align(to: number, from = 0): void {
    const rel = this.pos - from;
    this.pos = from + Math.ceil(rel / to) * to;
  }
}

/** Caps on structural work, so a cyclic or bloated file costs bounded time. */
export const H5_LIMITS = {
  /** Object header messages across one object, continuations included. */
  messagesPerObject: 4096,
  /** B-tree and heap nodes visited per lookup walk. */
  nodesPerWalk: 65536,
  /** Objects reachable from the root that a walk visits. */
  objects: 100000,
  /** Bytes of one attribute value (model_config and friends). */
  attributeBytes: 16 * 1024 * 1024,
  /** Elements of one dataset (about 1 GiB of float32 at the most). */
  datasetElements: 1 << 28,
  /** Group nesting the reader follows. */
  depth: 32,
};
