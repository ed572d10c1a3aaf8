import { toHex } from './encoding.ts';

/** sha256 of every file and one combined digest over the sorted lines "<relative path> <sha256>". */
export interface ModelDigest {
  files: { path: string; sha256: string; bytes: number }[];
  combined: string;
}

/** Hex sha256 through WebCrypto, available alike in Node and workerd. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const view = new Uint8Array(bytes.byteLength);
  view.set(bytes);
  const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', view));
  return toHex(hash);
}

/** The digest a report records for a model's files, so a reader can tie the verdict to exact bytes. */
export async function digestFiles(files: ReadonlyMap<string, Uint8Array>): Promise<ModelDigest> {
  const paths = [...files.keys()].sort();
  const list = await Promise.all(
    paths.map(async (path) => ({ path, sha256: await sha256Hex(files.get(path)!), bytes: files.get(path)!.byteLength })),
  );
  const lines = list.map((f) => `${f.path} ${f.sha256}`).join('\n');
  return { files: list, combined: await sha256Hex(new TextEncoder().encode(lines)) };
}
