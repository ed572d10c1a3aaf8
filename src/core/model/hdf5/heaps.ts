import type { Bytes } from './bytes.ts';
import { Cursor, corrupt } from './bytes.ts';

/** A local heap's data segment (where a symbol-table group keeps its link names). */
export function readLocalHeap(b: Bytes, base: number, at: number): { at: number; size: number } {
  if (b.ascii(at, 4, 'local heap') !== 'HEAP') corrupt(`local heap at ${at} lacks its HEAP signature`);
  const c = new Cursor(b, at + 8);
  const size = c.length('local heap size');
  c.length();
  const data = c.address('local heap data');
  if (data === null) corrupt(`local heap at ${at} has no data segment`);
  b.check(base + data, size, 'local heap data');
  return { at: base + data, size };
}

/** A NUL-terminated name inside a local heap's data segment. */
export function heapString(b: Bytes, heap: { at: number; size: number }, offset: number): string {
  if (offset >= heap.size) corrupt(`name offset ${offset} is outside its local heap (${heap.size} bytes)`);
  const bytes = b.slice(heap.at + offset, heap.size - offset, 'link name');
  const end = bytes.indexOf(0);
  if (end < 0) corrupt(`link name at heap offset ${offset} is not terminated`);
  return new TextDecoder().decode(bytes.subarray(0, end));
}

/**
 * Reads variable-length objects from global heap collections, keeping each collection's index once
 * read, since a model_config string array points into the same collection many times.
 */
export class GlobalHeap {
  private readonly collections = new Map<number, Map<number, { at: number; size: number }>>();
  constructor(
    private readonly b: Bytes,
    private readonly base: number,
  ) {}

  /** The bytes of a vlen element stored at `at` (length, collection address, object index). */
  element(at: number): Uint8Array {
    const c = new Cursor(this.b, at);
    const length = c.u32();
    const address = c.address('global heap address');
    const index = c.u32();
    if (address === null || length === 0) return new Uint8Array(0);
    const obj = this.collection(this.base + address).get(index);
    if (obj === undefined) corrupt(`global heap object ${index} not found in the collection at ${this.base + address}`);
    if (length > obj.size) corrupt(`variable-length value claims ${length} bytes but its heap object holds ${obj.size}`);
    return this.b.slice(obj.at, length, 'global heap object');
  }

  private collection(at: number): Map<number, { at: number; size: number }> {
    const known = this.collections.get(at);
    if (known) return known;
    if (this.b.ascii(at, 4, 'global heap') !== 'GCOL') corrupt(`global heap collection at ${at} lacks its GCOL signature`);
    const c = new Cursor(this.b, at + 8);
    const size = c.length('global heap collection size');
    this.b.check(at, size, 'global heap collection');
    const end = at + size;
    const objects = new Map<number, { at: number; size: number }>();
    while (c.pos + 8 + this.b.lengthSize <= end) {
      const index = c.u16();
      c.skip(6);
      const objSize = c.length('global heap object size');
      if (index === 0) break;
      if (c.pos + objSize > end) corrupt(`global heap object ${index} at ${c.pos} runs past its collection`);
      objects.set(index, { at: c.pos, size: objSize });
      c.pos += Math.ceil(objSize / 8) * 8;
    }
    this.collections.set(at, objects);
    return objects;
  }
}
