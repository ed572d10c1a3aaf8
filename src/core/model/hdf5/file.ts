import type { Bytes } from './bytes.ts';
import { Cursor, H5_LIMITS, corrupt, unsupported } from './bytes.ts';
import { GlobalHeap, heapString, readLocalHeap } from './heaps.ts';
import { MSG, readObjectHeader, type Message } from './object-header.ts';
import { decodeValues, readDataspace, readDatatype, readFilters, readLayout, type Datatype, type Filter, type Layout } from './messages.ts';
import { readSuperblock, type Superblock } from './superblock.ts';

export type AttributeValue = string | number | (string | number)[];

/** A dataset's metadata: enough to read its values and to locate them for an in-place write. */
export interface DatasetInfo {
  path: string;
  shape: number[];
  type: Datatype;
  layout: Layout;
  filters: Filter[];
}

export interface H5Object {
  path: string;
  at: number;
  messages: Message[];
}

/**
 * A read-only view of an HDF5 file held in memory: groups, attributes and dataset metadata. It reads
 * the subset of the format that h5py and Keras write (superblocks 0–3, v1/v2 object headers, symbol
 * tables and compact links, contiguous/compact/chunked layouts) and refuses, by name, what it does not
 * follow (external files and links, virtual datasets, dense link or attribute storage).
 */
export class H5File {
  readonly b: Bytes;
  readonly base: number;
  readonly root: H5Object;
  readonly heap: GlobalHeap;
  readonly superblock: Superblock;
  private objects = 0;

  constructor(data: Uint8Array) {
    const sb = readSuperblock(data);
    this.superblock = sb;
    this.b = sb.bytes;
    this.base = sb.base;
    this.heap = new GlobalHeap(this.b, this.base);
    this.root = this.object('/', sb.rootHeader);
  }

  private object(path: string, at: number): H5Object {
    if (++this.objects > H5_LIMITS.objects) corrupt(`more than ${H5_LIMITS.objects} objects visited`);
    return { path, at, messages: readObjectHeader(this.b, this.base, at) };
  }

  /** Children of a group by name, in name order (symbol tables and compact link messages). */
  children(group: H5Object): Map<string, number> {
    const out = new Map<string, number>();
    for (const m of group.messages) {
      if (m.type === MSG.symbolTable) {
        const c = new Cursor(this.b, m.at);
        const tree = c.address('group B-tree');
        const heapAt = c.address('group local heap');
        if (tree === null || heapAt === null) continue;
        const heap = readLocalHeap(this.b, this.base, this.base + heapAt);
        this.walkGroupTree(this.base + tree, heap, out);
      } else if (m.type === MSG.link) {
        const link = this.readLink(m);
        if (link) out.set(link.name, link.address);
      } else if (m.type === MSG.linkInfo) {
        const c = new Cursor(this.b, m.at + 1);
        const flags = c.u8();
        if (flags & 1) c.skip(8);
        if (c.address() !== null) unsupported(`group ${group.path} keeps its links in dense storage (a fractal heap)`);
      } else if (m.type === MSG.externalFiles) {
        unsupported(`${group.path} stores data in external files`);
      }
    }
    return out;
  }

  private walkGroupTree(root: number, heap: { at: number; size: number }, out: Map<string, number>): void {
    const seen = new Set<number>();
    const stack = [root];
    while (stack.length > 0) {
      const at = stack.pop()!;
      if (seen.has(at)) corrupt(`group B-tree node at ${at} is reached twice (a cycle)`);
      seen.add(at);
      if (seen.size > H5_LIMITS.nodesPerWalk) corrupt(`group B-tree has more than ${H5_LIMITS.nodesPerWalk} nodes`);
      if (this.b.ascii(at, 4, 'B-tree node') === 'SNOD') {
        const c = new Cursor(this.b, at + 6);
        const n = c.u16();
        for (let i = 0; i < n; i++) {
          const nameOffset = c.uint(this.b.offsetSize, 'link name offset');
          const header = c.address('object header');
          c.skip(24);
          if (header === null) corrupt(`symbol table entry ${i} at ${at} has no object header`);
          out.set(heapString(this.b, heap, nameOffset), this.base + header);
        }
        continue;
      }
      if (this.b.ascii(at, 4, 'B-tree node') !== 'TREE') corrupt(`group B-tree node at ${at} lacks its TREE/SNOD signature`);
      const c = new Cursor(this.b, at + 4);
      if (c.u8() !== 0) corrupt(`B-tree node at ${at} is not a group node`);
      c.u8();
      const entries = c.u16();
      c.skip(2 * this.b.offsetSize);
      for (let i = 0; i < entries; i++) {
        c.skip(this.b.lengthSize);
        const child = c.address('B-tree child');
        if (child === null) corrupt(`B-tree node at ${at} has an undefined child`);
        stack.push(this.base + child);
      }
    }
  }

  private readLink(m: Message): { name: string; address: number } | null {
    const c = new Cursor(this.b, m.at);
    if (c.u8() !== 1) corrupt(`link message at ${m.at} has an unknown version`);
    const flags = c.u8();
    const type = flags & 0x08 ? c.u8() : 0;
    if (flags & 0x04) c.skip(8);
    if (flags & 0x10) c.u8();
    const nameLength = c.uint(1 << (flags & 3), 'link name length');
    const name = new TextDecoder().decode(c.bytes(nameLength, 'link name'));
    if (type === 0) {
      const address = c.address('link target');
      return address === null ? null : { name, address: this.base + address };
    }
    if (type === 1) return null; // soft links are aliases; the target is reached under its own name
    unsupported(`link "${name}" points into another file (external link)`);
  }

  /** Opens a child object by a slash-separated path from the root. */
  open(path: string): H5Object {
    let obj = this.root;
    const parts = path.split('/').filter((p) => p !== '');
    if (parts.length > H5_LIMITS.depth) corrupt(`path ${path} is deeper than ${H5_LIMITS.depth}`);
    for (const part of parts) {
      const at = this.children(obj).get(part);
      if (at === undefined) corrupt(`${path}: no "${part}" in ${obj.path}`);
      obj = this.object(`${obj.path === '/' ? '' : obj.path}/${part}`, at);
    }
    return obj;
  }

  /** Whether a path exists (without raising for a missing leaf). */
  has(path: string): boolean {
    const parts = path.split('/').filter((p) => p !== '');
    const parent = parts.slice(0, -1).join('/');
    try {
      return this.children(this.open(parent)).has(parts.at(-1) ?? '');
    } catch {
      return false;
    }
  }

  isDataset(obj: H5Object): boolean {
    return obj.messages.some((m) => m.type === MSG.layout);
  }

  /** All attributes stored in the object's header, decoded. */
  attributes(obj: H5Object): Map<string, AttributeValue> {
    const out = new Map<string, AttributeValue>();
    for (const m of obj.messages) {
      if (m.type === MSG.attributeInfo) {
        const c = new Cursor(this.b, m.at + 1);
        const flags = c.u8();
        if (flags & 1) c.skip(2);
        if (c.address() !== null) unsupported(`${obj.path} keeps its attributes in dense storage (a fractal heap)`);
      }
      if (m.type !== MSG.attribute) continue;
      const { name, value } = this.readAttribute(m);
      out.set(name, value);
    }
    return out;
  }

  private readAttribute(m: Message): { name: string; value: AttributeValue } {
    const c = new Cursor(this.b, m.at);
    const version = c.u8();
    if (version < 1 || version > 3) corrupt(`attribute message at ${m.at} has version ${version}`);
    c.u8();
    const nameSize = c.u16();
    const typeSize = c.u16();
    const spaceSize = c.u16();
    if (version === 3) c.u8();
    const pad = (n: number) => (version === 1 ? Math.ceil(n / 8) * 8 : n);
    const nameBytes = this.b.slice(c.pos, nameSize, 'attribute name');
    const name = new TextDecoder().decode(nameBytes.subarray(0, nameBytes.indexOf(0) < 0 ? nameSize : nameBytes.indexOf(0)));
    c.pos += pad(nameSize);
    const type = readDatatype(new Cursor(this.b, c.pos));
    c.pos += pad(typeSize);
    const dims = readDataspace(new Cursor(this.b, c.pos));
    c.pos += pad(spaceSize);
    if (dims === null) return { name, value: [] };
    const count = dims.reduce((a, d) => a * d, 1);
    const elementSize = type.kind === 'vlen-string' ? 8 + this.b.offsetSize : type.kind === 'other' ? type.size : type.size;
    if (count * elementSize > H5_LIMITS.attributeBytes)
      corrupt(`attribute "${name}" declares ${count * elementSize} bytes, over the ${H5_LIMITS.attributeBytes}-byte cap`);
    if (c.pos + count * elementSize > m.at + m.size) corrupt(`attribute "${name}" declares more data than its message holds`);
    const values = decodeValues(this.b, type, c.pos, count, (at) => {
      const bytes = this.heap.element(at);
      if (bytes.byteLength > H5_LIMITS.attributeBytes)
        corrupt(`attribute "${name}" holds a string over the ${H5_LIMITS.attributeBytes}-byte cap`);
      return bytes;
    });
    return { name, value: dims.length === 0 ? values[0]! : values };
  }

  /** A dataset's shape, type, layout and filters. */
  dataset(obj: H5Object): DatasetInfo {
    let shape: number[] | null | undefined;
    let type: Datatype | undefined;
    let layout: Layout | undefined;
    let filters: Filter[] = [];
    for (const m of obj.messages) {
      const c = new Cursor(this.b, m.at);
      if (m.type === MSG.dataspace) shape = readDataspace(c);
      else if (m.type === MSG.datatype) type = readDatatype(c);
      else if (m.type === MSG.layout) layout = readLayout(c, this.base);
      else if (m.type === MSG.filters) filters = readFilters(c);
      else if (m.type === MSG.externalFiles) unsupported(`dataset ${obj.path} stores its data in external files`);
    }
    if (shape === undefined || type === undefined || layout === undefined)
      corrupt(`${obj.path} is not a complete dataset (dataspace, datatype and layout needed)`);
    const elements = (shape ?? [0]).reduce((a, d) => a * d, 1);
    if (elements > H5_LIMITS.datasetElements)
      corrupt(`dataset ${obj.path} declares ${elements} elements, over the cap of ${H5_LIMITS.datasetElements}`);
    return { path: obj.path, shape: shape ?? [0], type, layout, filters };
  }
}
