import { describe, expect, it } from 'vitest';
import {
  broadcast,
  concat,
  constant,
  gather,
  reshapeDims,
  slice,
  transpose,
  unsqueezeDims,
  squeezeDims,
} from '../../src/core/model/onnx/constants.ts';

// The constant arithmetic PyTorch exports into ONNX graphs (its padding chains, view(size(0), -1)), checked
// against what numpy gives for the same expressions.
const arange = (dims: number[]) =>
  constant(
    dims,
    Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => i),
  );

describe('ONNX constant folding', () => {
  it("Slice with a negative step, as torch's F.pad export reverses its pad pairs", () => {
    // numpy: np.arange(8).reshape(4, 2)[-1::-1] (end -9223372036854775807 clamps to before the start)
    const out = slice(arange([4, 2]), [-1], [Number(-9223372036854775807n)], [0], [-1]);
    expect(out.dims).toEqual([4, 2]);
    expect(Array.from(out.data)).toEqual([6, 7, 4, 5, 2, 3, 0, 1]);
    // np.arange(10)[1:8:3] and an end past the dim
    expect(Array.from(slice(arange([10]), [1], [8], null, [3]).data)).toEqual([1, 4, 7]);
    expect(Array.from(slice(arange([10]), [7], [100], null, null).data)).toEqual([7, 8, 9]);
  });

  it('Transpose, and Reshape: 0 copies the input dim unless allowzero, −1 takes the rest', () => {
    expect(Array.from(transpose(arange([2, 3]), [1, 0]).data)).toEqual([0, 3, 1, 4, 2, 5]);
    expect(Array.from(transpose(arange([2, 3]), null).data)).toEqual([0, 3, 1, 4, 2, 5]);
    expect(reshapeDims([2, 3, 4], [0, -1], false, 'Reshape')).toEqual([2, 12]);
    expect(() => reshapeDims([2, 3, 4], [0, -1], true, 'Reshape')).toThrow(/cannot reshape/);
  });

  it('refuses what does not reshape or broadcast, naming the shapes', () => {
    expect(() => reshapeDims([2, 3], [4, -1], false, 'Reshape')).toThrow(/cannot reshape \[2, 3\] to \[4, -1\]/);
    expect(() => broadcast(arange([2, 3]), arange([4]), (a, b) => a + b, 'Add')).toThrow(/\[2, 3\] and \[4\] do not broadcast/);
  });

  it('Gather, Concat, broadcasting arithmetic and the dims of (Un)Squeeze', () => {
    expect(Array.from(gather(arange([3, 2]), constant([2], [2, -3]), 0).data)).toEqual([4, 5, 0, 1]);
    expect(Array.from(concat([arange([2, 1]), constant([2, 2], [7, 8, 9, 10])], 1).data)).toEqual([0, 7, 8, 1, 9, 10]);
    expect(Array.from(broadcast(arange([2, 3]), constant([3], [10, 20, 30]), (a, b) => a + b, 'Add').data)).toEqual([
      10, 21, 32, 13, 24, 35,
    ]);
    expect(unsqueezeDims([3, 4], [0, -1])).toEqual([1, 3, 4, 1]);
    expect(squeezeDims([1, 3, 1, 1], [2, 3])).toEqual([1, 3]);
    expect(squeezeDims([1, 3, 1, 1], null)).toEqual([3]);
  });
});
