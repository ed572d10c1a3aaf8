import { Bytes, corrupt, unsupported } from './bytes.ts';

const SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

export interface Superblock {
  version: number;
  bytes: Bytes;
  /** Where addresses count from (non-zero when the file has a user block). */
  base: number;
  rootHeader: number;
  /** File offset of the end-of-file address field (to extend the file; versions 0–1 carry no checksum). */
  eofField: number;
}

function signatureAt(data: Uint8Array, at: number): boolean {
  return SIGNATURE.every((b, i) => data[at + i] === b);
}

/**
 * Finds and reads the superblock. The signature may sit at 0, 512, 1024, … (after a user block), as
 * the format allows; the search stops at the file's end so a file without one costs a few probes.
 */
export function readSuperblock(data: Uint8Array): Superblock {
  let at = -1;
  for (let probe = 0; probe + 8 <= data.byteLength; probe = probe === 0 ? 512 : probe * 2) {
    if (signatureAt(data, probe)) {
      at = probe;
      break;
    }
  }
  if (at < 0) corrupt('no HDF5 signature found (not an HDF5 file, or truncated before its superblock)');
  const probe = new Bytes(data, 8, 8);
  const version = probe.uint(at + 8, 1, 'superblock version');
  if (version === 0 || version === 1) {
    const offsetSize = probe.uint(at + 13, 1, 'size of offsets');
    const lengthSize = probe.uint(at + 14, 1, 'size of lengths');
    checkSizes(offsetSize, lengthSize);
    const b = new Bytes(data, offsetSize, lengthSize);
    let pos = at + 24 + (version === 1 ? 4 : 0);
    const base = b.uint(pos, offsetSize, 'base address');
    pos += 4 * offsetSize; // base, free space, end of file, driver info
    const eofField = at + 24 + (version === 1 ? 4 : 0) + 2 * offsetSize;
    const eof = b.uint(eofField, offsetSize, 'end-of-file address');
    checkEof(data, eof);
    const rootHeader = b.uint(pos + offsetSize, offsetSize, 'root group object header address');
    return { version, bytes: b, base, rootHeader: base + rootHeader, eofField };
  }
  if (version === 2 || version === 3) {
    const offsetSize = probe.uint(at + 9, 1, 'size of offsets');
    const lengthSize = probe.uint(at + 10, 1, 'size of lengths');
    checkSizes(offsetSize, lengthSize);
    const b = new Bytes(data, offsetSize, lengthSize);
    const pos = at + 12;
    const base = b.uint(pos, offsetSize, 'base address');
    const eof = b.uint(pos + 2 * offsetSize, offsetSize, 'end-of-file address');
    checkEof(data, eof);
    const rootHeader = b.uint(pos + 3 * offsetSize, offsetSize, 'root group object header address');
    return { version, bytes: b, base, rootHeader: base + rootHeader, eofField: pos + 2 * offsetSize };
  }
  unsupported(`superblock version ${version}`);
}

function checkSizes(offsetSize: number, lengthSize: number): void {
  for (const [name, v] of [
    ['offsets', offsetSize],
    ['lengths', lengthSize],
  ] as const) {
    if (![2, 4, 8].includes(v)) corrupt(`size of ${name} is ${v} (must be 2, 4 or 8)`);
  }
}

/**
 * A file shorter than the end its superblock declares was cut off in transit. The library writes the
 * end-of-file address counting a user block too, though the format calls it relative to the base, so
 * the smaller reading is the one checked.
 */
function checkEof(data: Uint8Array, eof: number): void {
  if (eof > data.byteLength) corrupt(`the superblock declares ${eof} bytes but the file has ${data.byteLength} (truncated)`);
}
