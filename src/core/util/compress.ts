/**
 * Inflates zlib ('deflate') or raw deflate data with a running byte count, so a bomb stops as soon as it
 * passes `limit`; `tooLarge` and `invalid` raise the caller's own error (they must throw).
 */
export async function inflateCapped(
  bytes: Uint8Array,
  format: 'deflate' | 'deflate-raw',
  limit: number,
  tooLarge: () => never,
  invalid: (message: string) => never,
): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream(format));
  const parts: Uint8Array[] = [];
  let n = 0;
  let over = false;
  try {
    for await (const part of stream as unknown as AsyncIterable<Uint8Array>) {
      n += part.byteLength;
      if (n > limit) {
        over = true;
        break;
      }
      parts.push(part);
    }
  } catch (err) {
    invalid((err as Error).message);
  }
  if (over) tooLarge();
  return concat(parts, n);
}

/** zlib ('deflate') or raw deflate compression, with the platform's CompressionStream. */
export async function deflateBytes(bytes: Uint8Array, format: 'deflate' | 'deflate-raw'): Promise<Uint8Array> {
  return new Uint8Array(
    await new Response(new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream(format))).arrayBuffer(),
  );
}

/** The parts laid end to end. */
export function concat(parts: readonly Uint8Array[], total = parts.reduce((a, p) => a + p.byteLength, 0)): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
