import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';

/** Debian's interpreter, the one that sees python3-h5py (installed by the test set-up, tools/system-deps.mjs). */
const PYTHON = '/usr/bin/python3';

export interface H5Diff {
  /** Differences other than dataset values: objects, types, shapes, storage, attributes, archive entries. */
  structure: string[];
  /** Datasets whose values differ: the last-axis indices that differ, and whether they are all zero now. */
  datasets: Record<string, { channels: number[]; zero: boolean }>;
}

/** Compares two HDF5 files (or .keras archives) with h5py, an HDF5 reader independent of ours. */
export function h5diff(original: string, written: string): H5Diff {
  const out = execFileSync(PYTHON, [resolve('test/helpers/h5diff.py'), original, written], { encoding: 'utf8' });
  return JSON.parse(out) as H5Diff;
}
