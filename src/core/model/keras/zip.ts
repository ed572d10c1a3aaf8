import { concat, deflateBytes, inflateCapped } from '../../util/compress.ts';
import { errorsIn, ShapguardError } from '../../errors.ts';
import { crc32 } from '../../util/crc32.ts';

/** Caps that bound the work a hostile archive can cause (zip bombs, entry floods). */
export const ZIP_LIMITS = {
  entries: 64,
  uncompressedBytes: 256 * 1024 * 1024,
};

export interface ZipEntry {
  name: string;
  method: number;
  flags: number;
  crc: number;
  compressedSize: number;
  size: number;
  /** Offset of the entry's central directory record. */
  central: number;
  /** Offset of its local header. */
  local: number;
  /** Offset of its (possibly compressed) data. */
  data: number;
}

const bad: (message: string) => never = errorsIn('.keras archive').invalid;

/** Offset of the end-of-central-directory record: the last one within the longest comment from the end. */
function endRecord(v: DataView): number {
  for (let i = v.byteLength - 22; i >= Math.max(0, v.byteLength - 22 - 65535); i--) if (v.getUint32(i, true) === 0x06054b50) return i;
  bad('no end-of-central-directory record (not a zip file, or truncated)');
}

/**
 * Writes the fields a local header and a central record share (flags, method, CRC, sizes); `flagsAt` is
 * where the flags field sits: 6 in a local header, 8 in a central record.
 */
function setEntryFields(
  v: DataView,
  flagsAt: number,
  f: { flags: number; method: number; crc: number; compressedSize: number; size: number },
): void {
  v.setUint16(flagsAt, f.flags, true);
  v.setUint16(flagsAt + 2, f.method, true);
  v.setUint32(flagsAt + 8, f.crc, true);
  v.setUint32(flagsAt + 12, f.compressedSize, true);
  v.setUint32(flagsAt + 16, f.size, true);
}

/** Reads the central directory of a zip archive (no ZIP64, no encryption), checking every offset. */
export function readZip(bytes: Uint8Array): ZipEntry[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const eocd = endRecord(v);
  const count = v.getUint16(eocd + 10, true);
  const cdSize = v.getUint32(eocd + 12, true);
  const cdOffset = v.getUint32(eocd + 16, true);
  if (count === 0xffff || cdOffset === 0xffffffff)
    throw new ShapguardError('unsupported', '.keras archive: ZIP64 archives are not supported');
  if (count > ZIP_LIMITS.entries) bad(`${count} entries, over the limit of ${ZIP_LIMITS.entries}`);
  if (cdOffset + cdSize > eocd) bad('the central directory lies outside the archive');
  const entries: ZipEntry[] = [];
  let p = cdOffset;
  let total = 0;
  const text = new TextDecoder();
  for (let i = 0; i < count; i++) {
    if (p + 46 > eocd || v.getUint32(p, true) !== 0x02014b50) bad(`central directory record ${i} is malformed`);
    const flags = v.getUint16(p + 8, true);
    const method = v.getUint16(p + 10, true);
    const crc = v.getUint32(p + 16, true);
    const compressedSize = v.getUint32(p + 20, true);
    const size = v.getUint32(p + 24, true);
    const nameLength = v.getUint16(p + 28, true);
    const extraLength = v.getUint16(p + 30, true);
    const commentLength = v.getUint16(p + 32, true);
    const local = v.getUint32(p + 42, true);
    if (p + 46 + nameLength > eocd) bad(`central directory record ${i} runs past the directory`);
    const name = text.decode(bytes.subarray(p + 46, p + 46 + nameLength));
    if (flags & 1) throw new ShapguardError('unsupported', `.keras archive: entry ${name} is encrypted`);
    if (method !== 0 && method !== 8)
      throw new ShapguardError(
        'unsupported',
        `.keras archive: entry ${name} uses compression method ${method} (stored and deflate are read)`,
      );
    total += size;
    if (total > ZIP_LIMITS.uncompressedBytes) bad(`entries declare more than ${ZIP_LIMITS.uncompressedBytes} uncompressed bytes`);
    if (local + 30 > bytes.byteLength || v.getUint32(local, true) !== 0x04034b50) bad(`entry ${name} has no local header at ${local}`);
    const data = local + 30 + v.getUint16(local + 26, true) + v.getUint16(local + 28, true);
    if (data + compressedSize > bytes.byteLength) bad(`entry ${name} declares ${compressedSize} bytes past the end of the archive`);
    if (method === 0 && compressedSize !== size) bad(`stored entry ${name} has different compressed and uncompressed sizes`);
    entries.push({ name, method, flags, crc, compressedSize, size, central: p, local, data });
    p += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

/** An entry's uncompressed bytes, inflated with a running byte count so a bomb stops at its declared size. */
export async function readEntry(bytes: Uint8Array, e: ZipEntry): Promise<Uint8Array> {
  const raw = bytes.subarray(e.data, e.data + e.compressedSize);
  const out =
    e.method === 0
      ? raw
      : await inflateCapped(
          raw,
          'deflate-raw',
          e.size,
          () => bad(`entry ${e.name} inflates past its declared ${e.size} bytes (a zip bomb?)`),
          (m) => bad(`entry ${e.name} is not valid deflate data: ${m}`),
        );
  if (out.byteLength !== e.size) bad(`entry ${e.name} holds ${out.byteLength} bytes, ${e.size} declared`);
  if (crc32(out) !== e.crc) bad(`entry ${e.name} fails its CRC-32 check`);
  return out;
}

/**
 * The archive with one entry's contents replaced. A stored entry of the same size is patched in place
 * (data, and the CRC in its local header, data descriptor and central record), so every other byte of
 * the archive stays as it was; a deflated entry is re-deflated and the archive re-laid around it.
 */
export async function replaceEntry(bytes: Uint8Array, entries: ZipEntry[], target: ZipEntry, content: Uint8Array): Promise<Uint8Array> {
  const crc = crc32(content);
  if (target.method === 0 && content.byteLength === target.size) {
    const out = bytes.slice();
    const v = new DataView(out.buffer);
    out.set(content, target.data);
    // Only the CRC changes: a local header may leave its sizes to a data descriptor.
    v.setUint32(target.local + 14, crc, true);
    v.setUint32(target.central + 16, crc, true);
    if (target.flags & 0x08) {
      const d = target.data + target.compressedSize;
      v.setUint32(v.getUint32(d, true) === 0x08074b50 ? d + 4 : d, crc, true);
    }
    return out;
  }
  const packed = await deflateBytes(content, 'deflate-raw');
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const repacked = { flags: target.flags & ~0x08, method: 8, crc, compressedSize: packed.byteLength, size: content.byteLength };
  const parts: Uint8Array[] = [];
  const newLocal = new Map<ZipEntry, number>();
  let at = 0;
  for (const e of [...entries].sort((a, b) => a.local - b.local)) {
    newLocal.set(e, at);
    const header = bytes.slice(e.local, e.data);
    const hv = new DataView(header.buffer);
    let body = bytes.subarray(e.data, e.data + e.compressedSize);
    if (e === target) {
      setEntryFields(hv, 6, repacked);
      body = packed;
    }
    parts.push(header, body);
    at += header.byteLength + body.byteLength;
    if (e !== target && e.flags & 0x08) {
      const d = e.data + e.compressedSize;
      const len = v.getUint32(d, true) === 0x08074b50 ? 16 : 12;
      parts.push(bytes.subarray(d, d + len));
      at += len;
    }
  }
  const cdStart = at;
  for (const e of entries) {
    const nameLength = v.getUint16(e.central + 28, true);
    const rec = bytes.slice(e.central, e.central + 46 + nameLength + v.getUint16(e.central + 30, true) + v.getUint16(e.central + 32, true));
    const rv = new DataView(rec.buffer);
    rv.setUint32(42, newLocal.get(e)!, true);
    if (e === target) setEntryFields(rv, 8, repacked);
    parts.push(rec);
    at += rec.byteLength;
  }
  const tail = bytes.slice(endRecord(v));
  const tv = new DataView(tail.buffer);
  tv.setUint32(12, at - cdStart, true);
  tv.setUint32(16, cdStart, true);
  parts.push(tail);
  return concat(parts);
}
