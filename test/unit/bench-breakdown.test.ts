import { describe, expect, it } from 'vitest';
import { breakdownTables, type BenchModel, type ZooRun } from '../../bench/zoo.ts';

const model = (name: string, arch: string, half: BenchModel['half'], attack: BenchModel['attack'], realAsr: number | null): BenchModel => ({
  name,
  path: '',
  dataset: 'mnist',
  arch,
  half,
  attack,
  inputRange: [0, 1],
  realAsr,
});

const run = (m: string, seed: number, fields: Partial<ZooRun>): ZooRun =>
  ({
    model: m,
    seed,
    verdict: 'clean',
    flagged: [],
    hit: null,
    status: null,
    accBefore: 0.99,
    accAfter: null,
    asrAfter: null,
    ...fields,
  }) as ZooRun;

const patch = { trigger: { kind: 'patch' as const, size: 3, at: [1, 1] as [number, number], color: [1] }, target: 2, rate: 0.1 };
const pixel = { trigger: { kind: 'pixels' as const, points: [[1, 1]] as [number, number][], color: [1] }, target: 7, rate: 0.1 };

// The per-family and per-architecture rows must count each run once, in its own half and row, and leave
// out backdoors whose trigger does not work (real ASR under 90%), as the summary does.
describe('bench:zoo breakdown by family and architecture', () => {
  const models = [
    model('a', 'small', 'tuning', patch, 0.99),
    model('b', 'gap', 'held-out', patch, 0.95),
    model('c', 'small', 'held-out', pixel, 0.99),
    model('weak', 'small', 'held-out', pixel, 0.5),
    model('clean', 'gap', 'held-out', null, null),
  ];
  const runs = [
    run('a', 1, { verdict: 'backdoor', hit: true, status: 'repaired', asrAfter: 0.01, accAfter: 0.988 }),
    run('a', 2, { verdict: 'backdoor', hit: true, status: 'repaired', asrAfter: 0.3, accAfter: 0.99 }),
    run('b', 1, { verdict: 'incomplete', hit: false }),
    run('c', 1, { verdict: 'backdoor', hit: true, status: 'not-repaired' }),
    run('weak', 1, { verdict: 'backdoor', hit: true }),
    run('clean', 1, { verdict: 'backdoor', flagged: [8] }),
    run('clean', 2, { verdict: 'clean' }),
  ];
  const text = breakdownTables(models, runs, [1, 2]);
  const row = (label: string) => text.split('\n').find((l) => l.startsWith(`| ${label} |`));

  it('counts flagged runs and good repairs per family and half', () => {
    // Patch: tuning 2 of 2 flagged, 1 good repair (the other keeps 30%); held-out 0 of 1.
    expect(row('patch')).toBe('| patch | 2/2 (1) | 0/1 (1) | 1/2 (1) | 0/1 (1) |');
    // Pixel: the weak model (50% real ASR) is left out.
    expect(row('pixel')).toBe('| pixel | – | 1/1 (1) | – | 0/1 (1) |');
  });

  it('counts backdoored hits and clean false positives per architecture and half', () => {
    expect(row('gap')).toBe('| gap | – | – | 0/1 (1) | 1/2 (1) |');
    expect(row('small')).toBe('| small | 2/2 (1) | – | 1/1 (1) | – |');
  });

  it('has no repair columns for a detection-only run', () => {
    const detectOnly = breakdownTables(
      models,
      runs.map((r) => ({ ...r, status: null })),
      [1, 2],
    );
    expect(detectOnly).toContain('| family | tuning: flagged | held-out: flagged |');
    expect(detectOnly).not.toContain('repaired');
  });
});
