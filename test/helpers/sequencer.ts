import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The suite's slowest files (30 s to 3 min of scans each on CI's two cores), slowest first. On a fresh
 * clone vitest knows no durations and starts a project's largest files first, so a short file with six
 * scans (keras-genuine) started late and kept one core busy while the other sat idle at the end.
 */
const SLOW = [
  'keras-genuine',
  'zoo-certificates',
  'keras-format',
  'universality',
  'e2e-backdoor',
  'invariance',
  'chunking',
  'e2e-clean',
  'action',
  'certificate',
  'scan-memory',
];

/**
 * Vitest's own order (projects one after another; known durations, else size), with the slow files moved
 * to the front of their project.
 */
export class SlowFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const projects = [...new Set(sorted.map((f) => f.project.name))];
    const rank = (f: TestSpecification) => {
      const i = SLOW.findIndex((name) => f.moduleId.endsWith(`/${name}.test.ts`));
      return i < 0 ? SLOW.length : i;
    };
    // Array sort is stable: files outside the list keep vitest's order.
    return sorted.sort((a, b) => projects.indexOf(a.project.name) - projects.indexOf(b.project.name) || rank(a) - rank(b));
  }
}
