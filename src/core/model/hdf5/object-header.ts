import type { Bytes } from './bytes.ts';
import { Cursor, H5_LIMITS, corrupt, unsupported } from './bytes.ts';

/** Object header message types the reader uses. */
export const MSG = {
  dataspace: 0x0001,
  linkInfo: 0x0002,
  datatype: 0x0003,
  externalFiles: 0x0007,
  link: 0x0006,
  layout: 0x0008,
  filters: 0x000b,
  attribute: 0x000c,
  continuation: 0x0010,
  symbolTable: 0x0011,
  attributeInfo: 0x0015,
} as const;

export interface Message {
  type: number;
  /** Absolute file offset of the message's data. */
  at: number;
  size: number;
  flags: number;
}

/**
 * Reads every message of an object header (version 1 or 2), following continuation blocks. Each
 * continuation is visited once and the message count is capped, so a cyclic header cannot loop.
 */
export function readObjectHeader(b: Bytes, base: number, at: number): Message[] {
  const messages: Message[] = [];
  const blocks: { at: number; size: number }[] = [];
  const seen = new Set<number>();
  let version: number;
  let v2Flags = 0;
  if (b.ascii(at, 4, 'object header') === 'OHDR') {
    const c = new Cursor(b, at + 4);
    version = c.u8();
    if (version !== 2) corrupt(`object header at ${at} has version ${version}`);
    v2Flags = c.u8();
    if (v2Flags & 0x20) c.skip(16);
    if (v2Flags & 0x10) c.skip(4);
    const size = c.uint(1 << (v2Flags & 3), 'object header chunk size');
    blocks.push({ at: c.pos, size });
  } else {
    const c = new Cursor(b, at);
    version = c.u8();
    if (version !== 1) corrupt(`object header at ${at} has version ${version} (expected 1, or an OHDR signature)`);
    c.skip(1);
    c.u16(); // message count: trust the bytes, not the claim
    c.u32();
    const size = c.u32();
    blocks.push({ at: at + 16, size });
  }
  seen.add(at);
  for (let i = 0; i < blocks.length; i++) {
    const block = blocks[i]!;
    b.check(block.at, block.size, 'object header block');
    // Chunk #0's size excludes its checksum; a continuation block's length includes it.
    const end = block.at + block.size - (version === 2 && i > 0 ? 4 : 0);
    const c = new Cursor(b, block.at);
    if (version === 2 && i > 0) {
      if (b.ascii(block.at, 4, 'continuation block') !== 'OCHK') corrupt(`continuation block at ${block.at} lacks its OCHK signature`);
      c.pos += 4;
    }
    while (c.pos + (version === 1 ? 8 : 4) <= end) {
      let type: number;
      let size: number;
      let flags: number;
      if (version === 1) {
        type = c.u16();
        size = c.u16();
        flags = c.u8();
        c.skip(3);
      } else {
        type = c.u8();
        size = c.u16();
        flags = c.u8();
        if (v2Flags & 0x04) c.skip(2);
      }
      const dataAt = c.pos;
      if (dataAt + size > end) corrupt(`message of type ${type} at ${dataAt} runs past its header block`);
      if (messages.length >= H5_LIMITS.messagesPerObject)
        corrupt(`object at ${at} has more than ${H5_LIMITS.messagesPerObject} header messages`);
      if (flags & 0x02 && type !== MSG.continuation) unsupported(`shared object header messages (type ${type} at ${dataAt})`);
      if (type === MSG.continuation) {
        const cc = new Cursor(b, dataAt);
        const next = cc.address('continuation address');
        const len = cc.length('continuation length');
        if (next === null) corrupt(`continuation message at ${dataAt} has an undefined address`);
        if (seen.has(base + next)) corrupt(`object header continuation at ${base + next} is visited twice (a cycle)`);
        seen.add(base + next);
        blocks.push({ at: base + next, size: len });
      } else if (type !== 0) {
        messages.push({ type, at: dataAt, size, flags });
      }
      c.pos = dataAt + size;
      if (version === 1) c.align(8, block.at);
    }
  }
  return messages;
}
