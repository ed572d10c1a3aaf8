import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';

/**
 * One `npm test` run's id, set once in vitest.config.ts and inherited by every test process: results shared
 * between test files live under it, so no run ever reads another's (or an older build's) results.
 */
export const RUN_ID_VARIABLE = 'SHAPGUARD_TEST_RUN';

const POLL_MS = 250;

/**
 * Computes a scan several test files read once per test run, and hands the others its result. A scan is
 * deterministic in its model, options and evaluation bound (e2e-clean's determinism test checks this), so
 * running it again in each file tests nothing more and costs 20-30 s of CI's two cores each time. The result
 * must be JSON and must not be changed by whoever reads it (files it names are shared too). Test files run
 * in parallel processes: the first to ask computes (an exclusive mkdir is the lock), the others wait for it.
 * Outside `npm test` (no run id) it simply computes.
 */
export async function sharedResult<T>(key: string, compute: () => Promise<T>): Promise<T> {
  const paths = sharedPaths(key);
  if (paths === null) return compute();
  const { result, failed, lock } = paths;
  try {
    mkdirSync(lock);
    writeFileSync(join(lock, 'owner'), String(process.pid));
  } catch {
    // Another file computes it: wait for its result, or compute it here if it failed there or its process
    // died without a word (killed, out of memory), which would leave this one waiting for ever.
    for (;;) {
      if (existsSync(result)) return JSON.parse(readFileSync(result, 'utf8')) as T;
      if (existsSync(failed) || ownerGone(lock)) return compute();
      await new Promise((done) => setTimeout(done, POLL_MS));
    }
  }
  try {
    const value = await compute();
    // Written whole, then renamed: a reader never sees half a result.
    writeFileSync(`${result}.tmp`, JSON.stringify(value));
    renameSync(`${result}.tmp`, result);
    return value;
  } catch (err) {
    writeFileSync(failed, '');
    rmSync(`${result}.tmp`, { force: true });
    throw err;
  }
}

/** Where one key's shared result, failure mark and lock live in this run; null outside a test run. */
export function sharedPaths(key: string): { result: string; failed: string; lock: string } | null {
  const run = process.env[RUN_ID_VARIABLE];
  if (run === undefined || !/^[\w-]+$/.test(run)) return null;
  const dir = join(tmpdir(), `shapguard-test-run-${run}`);
  mkdirSync(dir, { recursive: true });
  const name = createHash('sha256').update(key).digest('hex').slice(0, 32);
  return { result: join(dir, `${name}.json`), failed: join(dir, `${name}.failed`), lock: join(dir, `${name}.lock`) };
}

/** Whether the process that took `lock` is gone (not yet known: not gone; the owner file follows the mkdir). */
function ownerGone(lock: string): boolean {
  const owner = join(lock, 'owner');
  if (!existsSync(owner)) return false;
  const pid = Number(readFileSync(owner, 'utf8'));
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
