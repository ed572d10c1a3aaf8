import { describe, expect, it } from 'vitest';
import { bytesPerRow, DEFAULT_MEMORY, defaultMemory, planScan } from '../../src/core/scan/plan.ts';

const MiB = 1024 * 1024;
// The MNIST fixtures' CNN: 26·26·16, 13·13·16, 11·11·32, 5·5·32, 800, 64, 10 floats per row.
const mnist = { parameters: 56714, classes: 10, stepOutputs: [10816, 2704, 3872, 800, 800, 64, 10], firstPlayerStep: 2 };
const wanted = { triggerImagesPerTarget: 8, shapleyBatch: 32 };

describe('scan plan', () => {
  it('sums a row of layer outputs in bytes from a step on', () => {
    expect(bytesPerRow([10, 20, 30], 0)).toBe(240);
    expect(bytesPerRow([10, 20, 30], 1)).toBe(200);
    expect(bytesPerRow([10, 20, 30], 3)).toBe(0);
  });

  it('gives the activations what a 128 MB isolate leaves once the weights are in (twice) and the runtime', () => {
    const room = (parameters: number) => Math.floor((128e6 - 37 * MiB - 2 * 4 * parameters) / 1.33);
    expect(defaultMemory(mnist.parameters)).toBe(room(mnist.parameters));
    expect(defaultMemory(mnist.parameters)).toBeLessThanOrEqual(DEFAULT_MEMORY);
    // 5.2M parameters: the weights take 42 MB of the isolate.
    expect(defaultMemory(5.2e6)).toBe(room(5.2e6));
    // Past what an isolate can hold at all, the floor.
    expect(defaultMemory(30e6)).toBe(8 * MiB);
  });

  it('sizes passes by the memory budget', () => {
    const plan = planScan(mnist, undefined, wanted);
    const rowBytes = bytesPerRow(mnist.stepOutputs, 0);
    expect(plan.memory).toBe(defaultMemory(mnist.parameters));
    expect(plan.passRows).toBe(Math.floor(plan.memory / (rowBytes * 12)));
    expect(planScan(mnist, 2 * MiB, wanted).memory).toBe(2 * MiB);
    expect(plan.triggerImagesPerTarget).toBe(8);
    expect(plan.triggerRowsPerPass).toBe(plan.passRows);
    expect(plan.recheckImagesPerTarget).toBe(8);
  });

  it('trigger rows per step do not depend on the memory budget; passes do', () => {
    const roomy = planScan(mnist, 64 * MiB, wanted);
    const tight = planScan(mnist, 2 * MiB, wanted);
    expect(tight.triggerImagesPerTarget).toBe(roomy.triggerImagesPerTarget);
    expect(tight.passRows).toBeLessThan(roomy.passRows);
    // A pass always holds at least one target's images.
    expect(tight.triggerRowsPerPass).toBe(Math.max(tight.triggerImagesPerTarget, tight.passRows));
    // The recheck's passes fit the budget: as few as 2 images per target.
    expect(planScan(mnist, 1, wanted).recheckImagesPerTarget).toBe(2);
  });

  it('gives each target fewer trigger images when a row is big, never fewer than 2', () => {
    // A 43-class model whose rows are 2 MB of outputs: 64 MiB / 6 MB per row fits 10 rows, under 2 per class.
    const wide = { parameters: 1e6, classes: 43, stepOutputs: [524288], firstPlayerStep: 0 };
    expect(planScan(wide, undefined, wanted).triggerImagesPerTarget).toBe(2);
    const mid = { parameters: 1e6, classes: 10, stepOutputs: [131072], firstPlayerStep: 0 };
    // 64 MiB / (3 × 512 KiB) = 42 rows for 10 classes: 4 each.
    expect(planScan(mid, undefined, wanted).triggerImagesPerTarget).toBe(4);
  });

  it('shrinks the Shapley batch with the stamped rows, between 4 and the configured batch', () => {
    const plan = planScan(mnist, undefined, wanted);
    expect(plan.shapleyBatch(36)).toBe(32);
    const tail = bytesPerRow(mnist.stepOutputs, mnist.firstPlayerStep) * 2;
    const rows = Math.ceil(plan.memory / (tail * 10));
    expect(plan.shapleyBatch(rows)).toBe(Math.max(4, Math.floor(plan.memory / (tail * rows))));
    expect(plan.shapleyBatch(rows)).toBeLessThan(32);
    expect(plan.shapleyBatch(1e6)).toBe(4);
  });
});
