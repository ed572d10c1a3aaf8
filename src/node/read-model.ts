import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { IO_LIMITS, resolveRelative } from '../core/model-io.ts';

/**
 * Reads model.json and the shards its manifest names (only those inside its folder) into the map the
 * engine takes. Anything unreadable is left out so the engine reports precisely what is missing.
 */
export async function readModelFiles(modelPath: string): Promise<{ files: Map<string, Uint8Array>; entry: string }> {
  const entry = basename(modelPath);
  const dir = dirname(modelPath);
  const files = new Map<string, Uint8Array>();
  const info = await stat(modelPath);
  if (!info.isFile()) throw new Error(`${modelPath} is not a file`);
  if (info.size > IO_LIMITS.modelJsonBytes) {
    files.set(entry, new Uint8Array(IO_LIMITS.modelJsonBytes + 1));
    return { files, entry };
  }
  const json = new Uint8Array(await readFile(modelPath));
  files.set(entry, json);
  let paths: string[];
  try {
    const parsed = JSON.parse(new TextDecoder().decode(json)) as { weightsManifest?: { paths?: unknown }[] };
    paths = (parsed.weightsManifest ?? []).flatMap((g) => (Array.isArray(g?.paths) ? g.paths.filter((p): p is string => typeof p === 'string') : []));
  } catch {
    return { files, entry };
  }
  for (const p of paths) {
    let rel: string;
    try {
      rel = resolveRelative(entry, p);
    } catch {
      continue;
    }
    try {
      const s = await stat(join(dir, rel));
      if (s.isFile() && s.size <= IO_LIMITS.weightBytes) files.set(rel, new Uint8Array(await readFile(join(dir, rel))));
    } catch {
      // Missing: the engine names it in the report.
    }
  }
  return { files, entry };
}
