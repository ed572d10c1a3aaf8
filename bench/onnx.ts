import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadModel } from '../src/core/model/load.ts';
import { scanModel } from '../src/core/scan/scan.ts';
import type { SampleFile } from '../src/core/sample/sample.ts';
import { judgeOnnx } from '../test/helpers/onnx.ts';
import { trustedSample } from '../test/helpers/sample.ts';
import { fixtureTest, type OnnxManifestEntry } from '../tools/fixtures/build-onnx.ts';

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/**
 * Rows for the ONNX table: each trained ONNX fixture (test/fixtures/onnx) loaded and scanned at seed 1 with the
 * default budget, data-free and few-shot (10 real images per class), judged by onnxruntime on the first 2000
 * real test images: the original's and the written repair's accuracy and real-trigger ASR.
 */
export async function benchOnnx(): Promise<string[]> {
  const dir = resolve('test/fixtures/onnx');
  const fixtures = (JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as OnnxManifestEntry[]).filter((f) => f.dataset !== null);
  const rows: string[] = [];
  for (const f of fixtures) {
    // As bench:zoo's few-shot runs: MNIST test rows from 5000 on (judged on the first 2000), the glyphs' training split.
    const full = fixtureTest(f);
    const shape = full.shape;
    const px = shape[0] * shape[1] * shape[2];
    const n = Math.min(2000, full.count);
    const test = { ...full, images: full.images.subarray(0, n * px), labels: full.labels.subarray(0, n), count: n };
    const sample: SampleFile[] = await trustedSample(f.dataset!, 10);
    const bytes = new Uint8Array(readFileSync(join(dir, f.path)));
    const files = new Map([[f.path, bytes]]);
    const t0 = performance.now();
    const loaded = await loadModel(files, f.path);
    const loadMs = performance.now() - t0;
    const params = loaded.model.countParams();
    loaded.model.dispose();
    const judge = async (model: Uint8Array) => {
      const { accuracy: acc, asr } = await judgeOnnx(model, test, f.attack);
      return { acc, asr };
    };
    const before = await judge(bytes);
    const verdicts: string[] = [];
    let seconds = '';
    for (const fewShot of [false, true]) {
      const t1 = performance.now();
      const { report, repaired } = await scanModel(files, {
        entry: f.path,
        seed: 1,
        toolVersion: 'bench',
        ...(fewShot ? { cleanSample: sample } : {}),
      });
      const wall = (performance.now() - t1) / 1000;
      seconds += `${seconds ? ' / ' : ''}${wall.toFixed(1)} s`;
      const flagged = report.detection?.flagged.length ? ` → ${report.detection.flagged.join(',')}` : '';
      let repair = report.verdict === 'backdoor' ? `, ${report.repair?.status}` : '';
      const out = repaired?.get(f.path);
      if (out !== undefined) {
        const after = await judge(out);
        repair += ` (${after.asr === null ? '' : `ASR ${pct(after.asr)}, `}acc ${pct(after.acc)})`;
      }
      verdicts.push(`${report.verdict}${flagged}${repair}`);
    }
    rows.push(
      `| ${f.name} | ${f.arch} | ${f.opset}${f.fold ? '' : ', unfolded'} | ${params} | ${loadMs.toFixed(0)} ms | ${pct(before.acc)} | ${before.asr === null ? '–' : pct(before.asr)} | ${verdicts[0]} | ${verdicts[1]} | ${seconds} |`,
    );
    console.error(`done ${f.name}`);
  }
  return rows;
}
