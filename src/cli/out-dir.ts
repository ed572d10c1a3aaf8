import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** An --out folder that cannot hold the outputs: found before the scan, so no scan's work is lost to it. */
export class OutDirError extends Error {
  override readonly name = 'OutDirError';
}

const code = (err: unknown) => (err as NodeJS.ErrnoException).code ?? (err as Error).message;

/**
 * Makes sure `dir` is a folder the outputs can be written to, creating the missing levels one at a time:
 * Node 20's recursive mkdir spins forever under /proc, and a file in the path would otherwise surface as
 * EEXIST or ENOTDIR only after the whole scan. A probe file proves the folder writable (root passes
 * access() checks that a read-only mount still fails).
 */
export async function prepareOutDir(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let at = dir; ; at = dirname(at)) {
    let isDir: boolean;
    try {
      isDir = (await stat(at)).isDirectory();
    } catch (err) {
      if (code(err) !== 'ENOENT' && code(err) !== 'ENOTDIR') throw new OutDirError(`--out ${dir}: cannot use ${at} (${code(err)})`);
      if (dirname(at) === at) throw new OutDirError(`--out ${dir}: ${at} does not exist`);
      missing.unshift(at);
      continue;
    }
    if (!isDir) throw new OutDirError(`--out ${dir}: ${at} is a file, not a folder`);
    break;
  }
  for (const level of missing) {
    try {
      await mkdir(level);
    } catch (err) {
      throw new OutDirError(`--out ${dir}: cannot create ${level} (${code(err)})`);
    }
  }
  const probe = join(dir, `.shapguard-probe-${process.pid}`);
  try {
    await writeFile(probe, '');
  } catch (err) {
    throw new OutDirError(`--out ${dir}: the folder is not writable (${code(err)})`);
  } finally {
    await rm(probe, { force: true });
  }
}
