#!/usr/bin/env node
// `npm run build:lambda`: the AWS Lambda deployment folder, dist/lambda/ (index.mjs + tfjs' .wasm files,
// which the handler loads from beside itself). Zip the folder's contents to deploy.
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundle } from './build.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist/lambda');
mkdirSync(out, { recursive: true });
await bundle(join(root, 'src/lambda/handler.ts'), join(out, 'index.mjs'));
const wasmDir = join(dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
for (const f of readdirSync(wasmDir).filter((f) => f.endsWith('.wasm'))) copyFileSync(join(wasmDir, f), join(out, f));
console.log(`dist/lambda: ${readdirSync(out).join(', ')}`);
