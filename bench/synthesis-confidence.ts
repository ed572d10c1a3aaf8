// `npm run bench:synthesis -- [--half tuning|held-out] [--only name,...] [--seed 1] [--set synthesis.maxSteps=600,...]`:
// runs the scan's synthesis alone (its first start, the scan's own settings and random stream) on each zoo
// model and counts, per class, the images left under the confidence target, and how many of those the
// model's own softmax already puts at or over it. When most are, what holds the synthesis back is the scan's
// normalised probability (model-info.ts: logits scaled per row), not the model (docs/benchmarks.md, "Why
// global-average-pooling heads end incomplete").
import * as tf from '@tensorflow/tfjs-core';
import { prepare } from '../src/core/scan/context.ts';
import { stageConfigs } from '../src/core/scan/options.ts';
import { ReportBuilder } from '../src/core/scan/report-builder.ts';
import { probs } from '../src/core/model/model-info.ts';
import type { LoadedModel } from '../src/core/model/loaded-model.ts';
import { synthesizeStep } from '../src/core/scan/steps.ts';
import { initWasmBackend } from '../src/core/tfjs/backend.ts';
import { readModelFiles } from '../src/node/read-model.ts';
import { nodeWasmPath } from '../src/node/wasm-path.ts';
import { benchModels, benchScanOptions, cliArg, parseOverrides, type BenchModel } from './zoo.ts';

/** One model's synthesis, judged image by image. */
export interface SynthesisConfidence {
  model: string;
  images: number;
  steps: number;
  /** Images under the confidence target by the scan's normalised probability. */
  under: number;
  /** … of them, those the model's own softmax puts at or over the target. */
  ownConfident: number;
  /** Per class: images under the target, and the lowest normalised probability. */
  perClass: { under: number; lowest: number }[];
}

/** The model's own softmax of one row of logits. */
function ownSoftmax(row: number[], k: number): number {
  const top = Math.max(...row);
  const e = row.map((v) => Math.exp(v - top));
  return e[k]! / e.reduce((a, b) => a + b, 0);
}

/** Runs the scan's first synthesis on `m` at `seed` (the bench's usual 400k bound) and judges every image it made. */
export async function synthesisConfidence(m: BenchModel, seed: number, overrides = {}): Promise<SynthesisConfidence> {
  const { files, entry } = await readModelFiles(m.path);
  const options = benchScanOptions(entry, seed, 400_000, m.inputRange, overrides);
  const now = () => performance.now();
  const out = new ReportBuilder(options, stageConfigs(options), now);
  let loaded: LoadedModel | undefined;
  try {
    const ctx = await prepare(files, options, out, now, (x) => (loaded = x));
    const cfg = ctx.cfg.synthesis;
    const synth = synthesizeStep(ctx, cfg.starts[0]!);
    const parts = [synth.rev, synth.ver, synth.guard];
    const images = Float32Array.from(parts.flatMap((b) => Array.from(b.images)));
    const labels = parts.flatMap((b) => Array.from(b.labels));
    const n = labels.length;
    const K = ctx.info.classes;
    const { logits, p } = tf.tidy(() => {
      const y = ctx.info.graph.run(tf.tensor4d(images, [n, ...ctx.info.shape]));
      return { logits: y.arraySync() as number[][], p: probs(y).arraySync() };
    });
    const perClass = Array.from({ length: K }, () => ({ under: 0, lowest: 1 }));
    let under = 0;
    let ownConfident = 0;
    labels.forEach((k, i) => {
      const q = p[i]![k]!;
      perClass[k]!.lowest = Math.min(perClass[k]!.lowest, q);
      if (q >= cfg.confidence) return;
      under++;
      perClass[k]!.under++;
      if (ownSoftmax(logits[i]!, k) >= cfg.confidence) ownConfident++;
    });
    return { model: m.name, images: n, steps: synth.steps, under, ownConfident, perClass };
  } finally {
    loaded?.model.dispose();
  }
}

if (process.argv[1]?.endsWith('synthesis-confidence.ts') || process.argv[1]?.endsWith('synthesis-confidence.mjs')) {
  const half = cliArg('half');
  const only = cliArg('only')?.split(',');
  const seed = Number(cliArg('seed') ?? 1);
  const overrides = parseOverrides(cliArg('set'));
  await initWasmBackend({ wasmPath: nodeWasmPath() });
  const models = benchModels().filter((m) => (half === undefined || m.half === half) && (only === undefined || only.includes(m.name)));
  console.log(
    `| model | half | arch | steps | images under the target | … of which the model's own softmax is over it | classes under (count, lowest) |`,
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const m of models) {
    const r = await synthesisConfidence(m, seed, overrides);
    const classes = r.perClass
      .map((c, k) => (c.under > 0 ? `${k}: ${c.under}, ${c.lowest.toFixed(2)}` : null))
      .filter((x) => x !== null)
      .join('; ');
    console.log(`| ${m.name} | ${m.half} | ${m.arch} | ${r.steps} | ${r.under}/${r.images} | ${r.ownConfident} | ${classes || '–'} |`);
  }
}
