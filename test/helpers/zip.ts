import { deflateRawSync } from 'node:zlib';
import { crc32 } from '../../src/core/util/crc32.ts';

export interface ZipInput {
  name: string;
  data: Uint8Array;
  deflate?: boolean;
  /** What the headers claim the uncompressed size is (to build lying archives). */
  declaredSize?: number;
}

/** A minimal zip writer for building hostile and near-miss archives in tests. */
export function makeZip(entries: ZipInput[]): Uint8Array {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name);
    const body = e.deflate ? deflateRawSync(e.data) : Buffer.from(e.data);
    const size = e.declaredSize ?? e.data.byteLength;
    // The fields a local header and a central record share, from the version needed on.
    const shared = (buf: Buffer, at: number) => {
      buf.writeUInt16LE(20, at);
      buf.writeUInt16LE(e.deflate ? 8 : 0, at + 4);
      buf.writeUInt32LE(crc32(e.data), at + 10);
      buf.writeUInt32LE(body.byteLength, at + 14);
      buf.writeUInt32LE(size, at + 18);
      buf.writeUInt16LE(name.byteLength, at + 22);
      return buf;
    };
    const local = shared(Buffer.alloc(30), 4);
    local.writeUInt32LE(0x04034b50, 0);
    const central = shared(Buffer.alloc(46), 6);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, body);
    centrals.push(central, name);
    offset += 30 + name.byteLength + body.byteLength;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.byteLength, 12);
  end.writeUInt32LE(offset, 16);
  return new Uint8Array(Buffer.concat([...locals, cd, end]));
}
