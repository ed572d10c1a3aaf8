import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTfjsModel, writeTfjsModel } from '../../src/core/model/tfjs-layers.ts';
import { readDir } from './tiny-model.ts';

/**
 * A copy of a TensorFlow.js model folder whose last layer's kernel and bias are multiplied by `factor`:
 * its logits are `factor` times the original's, so it predicts exactly the same classes, with any
 * confidence. Written to a fresh temp folder, whose path is returned.
 */
export async function rescaledCopy(dir: string, factor: number): Promise<string> {
  const files = readDir(dir);
  const loaded = await loadTfjsModel(files);
  const last = loaded.model.layers.at(-1)!;
  const changed = new Map<string, Float32Array>();
  for (const w of last.weights)
    changed.set(
      w.originalName,
      Float32Array.from(w.read().dataSync(), (v) => v * factor),
    );
  const out = mkdtempSync(join(tmpdir(), `shapguard-x${factor}-`));
  for (const [name, bytes] of writeTfjsModel(loaded, changed)) writeFileSync(join(out, name), bytes);
  loaded.model.dispose();
  return out;
}
