#!/usr/bin/env node
// Runs a TypeScript script (fixtures, benchmarks) by bundling it first: see build.mjs for why tfjs needs
// a bundle in Node. The bundle goes to node_modules/.cache so nothing lands in the work tree.
import { pathToFileURL, fileURLToPath } from 'node:url';
import { resolve, basename, dirname, join } from 'node:path';
import { rmSync } from 'node:fs';
import { bundle } from './build.mjs';

const [entry, ...rest] = process.argv.slice(2);
if (!entry) {
  console.error('usage: run-ts.mjs <file.ts> [args]');
  process.exit(2);
}
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// One bundle per process: two runs of the same script at once (the zoo's halves in parallel) would
// otherwise write the same file while the other imports it.
const out = join(root, 'node_modules/.cache/shapguard', basename(entry).replace(/\.ts$/, `.${process.pid}.mjs`));
await bundle(resolve(entry), out);
process.argv = [process.argv[0], resolve(entry), ...rest];
process.on('exit', () => {
  rmSync(out, { force: true });
  rmSync(`${out}.map`, { force: true });
});
await import(pathToFileURL(out).href);
