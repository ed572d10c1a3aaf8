import { createRequire } from 'node:module';
import { dirname } from 'node:path';

/** Where tfjs-backend-wasm's .wasm files are on disk: a bundle's own folder is not the package's. */
export function nodeWasmPath(): string {
  const req = createRequire(import.meta.url);
  return dirname(req.resolve('@tensorflow/tfjs-backend-wasm/package.json')) + '/dist/';
}
