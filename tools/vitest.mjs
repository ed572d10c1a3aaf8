#!/usr/bin/env node
// Runs vitest with the temporary folder (TMPDIR) pointed at one of this run's own, removed when vitest ends.
// The suite's scans, services, servers and browsers make a few hundred temporary folders per run (copies of
// models and repaired outputs among them); left in the system's folder they pile up run after run.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dir = mkdtempSync(join(tmpdir(), 'shapguard-tests-'));
const child = spawn(process.execPath, [join(root, 'node_modules/vitest/vitest.mjs'), ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: { ...process.env, TMPDIR: dir, TMP: dir, TEMP: dir },
});
// Ctrl-C reaches vitest too (same process group): let it stop its workers, then clean up here.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => {
  rmSync(dir, { recursive: true, force: true });
  process.exit(code ?? (signal ? 1 : 0));
});
