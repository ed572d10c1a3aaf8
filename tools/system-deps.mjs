// `pretest`: the Debian packages the test suite needs, installed by the project itself so a fresh
// machine passes: python3-h5py (an HDF5 reader independent of ours, run with /usr/bin/python3), python3-onnx
// (onnx.checker and an ONNX reader independent of ours; `npm run fixtures:onnx` needs python3-torch too),
// dataset-fashion-mnist (real Fashion-MNIST for the genuine Keras models) and chromium (report.html is
// checked in a real headless browser). Installs only as root.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const needs = [];
if (spawnSync('/usr/bin/python3', ['-c', 'import h5py'], { stdio: 'ignore' }).status !== 0) needs.push('python3-h5py');
if (spawnSync('/usr/bin/python3', ['-c', 'import onnx'], { stdio: 'ignore' }).status !== 0) needs.push('python3-onnx');
if (!existsSync('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz')) needs.push('dataset-fashion-mnist');
if (!existsSync('/usr/bin/chromium')) needs.push('chromium');

// moto (the S3 server the S3 tests start) comes with this machine kind's Python; no Debian package has it.
if (spawnSync('python3', ['-c', 'import moto'], { stdio: 'ignore' }).status !== 0) {
  console.warn(
    'system-deps: python3 has no moto module; the S3 tests (moto.server on 127.0.0.1) will fail without it (pip install "moto[server]")',
  );
}

if (needs.length > 0) {
  if (process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get')) {
    console.warn(
      `system-deps: please install ${needs.join(' ')} (apt-get install ${needs.join(' ')}); the tests that need them will fail without them`,
    );
  } else {
    console.log(`system-deps: installing ${needs.join(' ')}`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...needs], { stdio: 'inherit', env });
  }
}
