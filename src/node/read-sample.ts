import { lstat, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { SAMPLE_LIMITS, type SampleFile } from '../core/sample/sample.ts';

/** A clean-sample folder that cannot be read as one: refused before the scan starts. */
export class SampleFolderError extends Error {
  override readonly name = 'SampleFolderError';
}

/** Entries looked at in all (images and anything else), so a huge tree is refused rather than walked. */
const MAX_ENTRIES = 4 * SAMPLE_LIMITS.maxImages;

/**
 * Lists a clean-sample folder for the engine (core/sample/sample.ts checks what the files are): regular
 * files only, links never followed (a link could lead outside the folder), at most two levels below it,
 * each file's size checked before it is read, and the caps on count and bytes applied while walking.
 */
export async function readSampleFolder(root: string): Promise<SampleFile[]> {
  let top;
  try {
    top = await lstat(root);
  } catch (err) {
    throw new SampleFolderError(
      `--clean-samples ${root}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such folder' : (err as Error).message}`,
    );
  }
  if (!top.isDirectory()) throw new SampleFolderError(`--clean-samples ${root}: not a folder`);
  const files: SampleFile[] = [];
  let seen = 0;
  let bytes = 0;
  const walk = async (dir: string, rel: string[]): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      if (++seen > MAX_ENTRIES) throw new SampleFolderError(`--clean-samples ${root}: more than ${MAX_ENTRIES} entries`);
      const path = join(dir, name);
      const info = await lstat(path);
      const relPath = [...rel, name].join('/');
      if (info.isSymbolicLink()) throw new SampleFolderError(`--clean-samples: ${relPath} is a link; links are not followed`);
      if (info.isDirectory()) {
        if (rel.length >= 2) throw new SampleFolderError(`--clean-samples: ${relPath} is nested deeper than <class>/<subfolder>/`);
        await walk(path, [...rel, name]);
      } else if (info.isFile()) {
        if (info.size > SAMPLE_LIMITS.maxFileBytes)
          throw new SampleFolderError(
            `--clean-samples: ${relPath} is ${info.size} bytes, more than ${SAMPLE_LIMITS.maxFileBytes} per image`,
          );
        bytes += info.size;
        if (bytes > SAMPLE_LIMITS.maxTotalBytes)
          throw new SampleFolderError(`--clean-samples ${root}: more than ${SAMPLE_LIMITS.maxTotalBytes} bytes in all`);
        files.push({ path: relPath, bytes: new Uint8Array(await readFile(path)) });
      }
    }
  };
  await walk(root, []);
  return files;
}
