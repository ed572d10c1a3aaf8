#!/usr/bin/env node
// Bundles the Node entry points with esbuild. tfjs-core's Node build (its `main`) leaves out the gradient
// registrations the scan needs, and its ESM build uses extensionless and directory imports that Node's
// loader refuses; bundling the ESM build (as wrangler does for workerd) gives Node the same code as Workers.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve, basename } from 'node:path';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Bundles `entry` (a .ts file) to `outfile`; returns the output path. */
export async function bundle(entry, outfile) {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: 'linked',
    logLevel: 'warning',
    mainFields: ['module', 'main'],
    // Bundled CommonJS and emscripten code still use require and __dirname; give the ESM bundle both.
    banner: {
      js: [
        "import { createRequire as __cr } from 'node:module';",
        "import { fileURLToPath as __fu } from 'node:url';",
        "import { dirname as __dn } from 'node:path';",
        'const require = __cr(import.meta.url);',
        'const __filename = __fu(import.meta.url);',
        'const __dirname = __dn(__filename);',
      ].join(' '),
    },
    // Native addons cannot be bundled: better-sqlite3 loads its .node file from its own package.
    external: ['esbuild', 'vitest', 'better-sqlite3', 'miniflare', 'wrangler'],
  });
  return outfile;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const entries = process.argv.slice(2);
  const list = entries.length > 0 ? entries : ['src/cli/cli.ts', 'src/server/serve.ts', 'src/server/scan-thread-entry.ts'];
  for (const entry of list) {
    const out = join(root, 'dist', basename(entry).replace(/\.ts$/, '.mjs'));
    await bundle(join(root, entry), out);
  }
}
