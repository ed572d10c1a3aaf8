import { createHash, randomUUID } from 'node:crypto';
import { link, mkdir, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import type { ObjectStore, PutOptions, StoredObject } from '../service/storage/object-store.ts';

const md5 = (bytes: Uint8Array) => createHash('md5').update(bytes).digest('hex');

/**
 * A bucket as a folder (`<root>/<bucket>/<key>`), the Node server's embedded default. ETags are MD5s as S3
 * gives for single-part uploads; a create-only write is a hard link of a finished temporary file, which
 * fails when the name exists, so readers never see half a file and two writers cannot both win.
 */
export class LocalStore implements ObjectStore {
  private readonly dir: string;

  constructor(
    root: string,
    readonly bucket: string,
  ) {
    if (!/^[a-z0-9][a-z0-9.-]{1,62}$/.test(bucket)) throw new Error(`bucket name ${bucket} is not a valid bucket name`);
    this.dir = join(root, bucket);
  }

  private path(key: string): string {
    if (
      key === '' ||
      key.startsWith('/') ||
      key.split('/').some((p) => p === '..' || p === '.') ||
      key.includes('\\') ||
      key.includes('\0')
    ) {
      throw new Error(`object key ${JSON.stringify(key)} cannot be stored in a folder`);
    }
    return join(this.dir, ...key.split('/'));
  }

  async get(key: string): Promise<StoredObject | null> {
    try {
      const body = new Uint8Array(await readFile(this.path(key)));
      return { body, etag: md5(body) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'EISDIR') return null;
      throw err;
    }
  }

  async head(key: string): Promise<{ etag: string; size: number } | null> {
    const got = await this.get(key);
    return got === null ? null : { etag: got.etag, size: got.body.length };
  }

  async put(key: string, body: Uint8Array | string, options: PutOptions = {}): Promise<boolean> {
    const target = this.path(key);
    const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
    if (options.ifMatch !== undefined) {
      const current = await this.get(key);
      if (current === null || current.etag !== options.ifMatch) return false;
    }
    await mkdir(dirname(target), { recursive: true });
    const tmp = join(dirname(target), `.tmp-${randomUUID()}`);
    await writeFile(tmp, bytes);
    try {
      if (options.createOnly) {
        try {
          await link(tmp, target);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
          throw err;
        }
      } else {
        await rename(tmp, target);
      }
      return true;
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async delete(key: string): Promise<void> {
    await unlink(this.path(key)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  async list(prefix: string): Promise<string[]> {
    const out: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        if (e.name.startsWith('.tmp-')) continue;
        const full = join(dir, e.name);
        if (e.isDirectory()) await walk(full);
        else {
          const key = relative(this.dir, full).split(sep).join('/');
          if (key.startsWith(prefix)) out.push(key);
        }
      }
    };
    // Start at the deepest folder the prefix names, not the whole bucket.
    const folder = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    await walk(folder === '' ? this.dir : this.path(folder));
    return out.sort();
  }

  /** Size on disk, for tests and the demo's listing. */
  async size(key: string): Promise<number | null> {
    return stat(this.path(key)).then(
      (s) => s.size,
      () => null,
    );
  }
}
