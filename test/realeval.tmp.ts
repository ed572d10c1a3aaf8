import { loadModelFromDisk } from './data/load-dir.ts';
import { loadMnist } from './data/mnist.ts';
import { accuracy, attackSuccessRate } from './data/evaluate.ts';
const [orig, rep] = process.argv.slice(2);
const test = loadMnist('test');
const trig = { kind: 'badnets', size: 3, corner: 'bottom-right', value: 1 } as const;
for (const p of [orig!, rep!]) {
  const m = await loadModelFromDisk(p);
  console.log(p, 'acc', accuracy(m, test), 'asr', attackSuccessRate(m, test, trig, 6));
}
