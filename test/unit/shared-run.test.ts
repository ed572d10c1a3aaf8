import { randomUUID } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RUN_ID_VARIABLE, sharedPaths, sharedResult } from '../helpers/shared-run.ts';

// The suite's shared scans (test/helpers/shared-run.ts): one computation per key and run, handed to every
// caller, and never a stale or half result.
describe('sharedResult', () => {
  beforeEach(() => {
    vi.stubEnv(RUN_ID_VARIABLE, randomUUID());
  });
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  const slow =
    <T>(value: T, calls: string[], name: string) =>
    async () => {
      calls.push(name);
      await new Promise((done) => setTimeout(done, 300));
      return value;
    };

  it('computes once per key and hands every caller the same result; another key computes its own', async () => {
    const calls: string[] = [];
    const [a, b, c] = await Promise.all([
      sharedResult('k', slow({ n: 1 }, calls, 'first')),
      sharedResult('k', slow({ n: 2 }, calls, 'second')),
      sharedResult('other', slow({ n: 3 }, calls, 'third')),
    ]);
    expect(calls.sort()).toEqual(['first', 'third']);
    expect([a, b, c]).toEqual([{ n: 1 }, { n: 1 }, { n: 3 }]);
    // Later callers read the stored result without computing.
    expect(await sharedResult('k', slow({ n: 4 }, calls, 'late'))).toEqual({ n: 1 });
    expect(calls).not.toContain('late');
  });

  it('a failed computation fails its caller, and a caller waiting on it computes its own', async () => {
    const failing = sharedResult('k', async () => {
      await new Promise((done) => setTimeout(done, 300));
      throw new Error('scan crashed');
    });
    const waiting = sharedResult('k', async () => 'computed here');
    await expect(failing).rejects.toThrow('scan crashed');
    expect(await waiting).toBe('computed here');
  });

  it('a caller waiting on a process that died without a word computes its own', async () => {
    // A lock taken by a process that has exited (killed, out of memory) and will never write a result.
    const gone = spawnSync(process.execPath, ['-e', '']).pid!;
    const { lock } = sharedPaths('k')!;
    mkdirSync(lock);
    writeFileSync(join(lock, 'owner'), String(gone));
    expect(await sharedResult('k', async () => 'computed here')).toBe('computed here');
  });

  it('outside a test run (no run id) computes every time', async () => {
    vi.stubEnv(RUN_ID_VARIABLE, undefined);
    const calls: string[] = [];
    await sharedResult('k', slow(1, calls, 'a'));
    await sharedResult('k', slow(1, calls, 'b'));
    expect(calls).toEqual(['a', 'b']);
  });

  it('another run id never reads this run’s results', async () => {
    await sharedResult('k', async () => 'this run');
    vi.stubEnv(RUN_ID_VARIABLE, randomUUID());
    expect(await sharedResult('k', async () => 'next run')).toBe('next run');
  });
});
