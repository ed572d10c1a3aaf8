import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The suite's slowest files, slowest first (their time on CI's two cores, 2026-12-08; every project's). On a
 * fresh clone vitest knows no durations; left to its own order (projects one after another, largest files
 * first) the slow wasm and Worker files ran last, and one core sat idle while the other finished them.
 * Longest first over the whole suite (the LPT rule) leaves short files to even out the end.
 */
const SLOW = [
  'keras-genuine', // 215 s
  'region-test', // 142 s (ran last on its first CI run: 861 s in all)
  'keras-format', // 126 s
  'zoo-certificates', // 116 s
  'all-to-all', // 103 s
  's3-service', // 93 s
  'few-shot', // 87 s
  'e2e-backdoor', // 84 s
  'universality', // 72 s
  'e2e-clean', // 69 s
  'attest', // 68 s
  'onnx-scan', // 66 s
  'node-service', // 62 s
  'invariance', // 59 s
  'chunking', // 56 s
  'action', // 48 s
  'r2-queue-scan', // 48 s
  'scan-memory', // 47 s
  'certificate', // 43 s
  'mlflow', // 43 s
  'all-to-all-repair', // 37 s
  'huggingface', // 36 s
  'synthesis-starts', // 35 s
  'node-crash', // 34 s
  'webhook-queue-scan', // 26 s
  'onnx-format', // 23 s
  's3-scan', // 23 s
  'lambda', // 22 s
];

/** Vitest's own order, with the slow files moved to the front in the order above, across projects. */
export class SlowFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification) => {
      const i = SLOW.findIndex((name) => f.moduleId.endsWith(`/${name}.test.ts`));
      return i < 0 ? SLOW.length : i;
    };
    // Array sort is stable: files outside the list keep vitest's order.
    return sorted.sort((a, b) => rank(a) - rank(b));
  }
}
