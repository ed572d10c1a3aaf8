import { describe, expect, it } from 'vitest';
import { entryLimit, entryOfPart, isModelEntry, modelFormat } from '../../src/core/model/files.ts';
import { ONNX_LIMITS } from '../../src/core/model/onnx/decode.ts';

describe('which files are models (one answer for the CLI, the service and the loader)', () => {
  it('names every supported entry, ONNX included, whatever the case of its suffix', () => {
    for (const p of ['m/model.json', 'a.h5', 'a.hdf5', 'a.keras', 'onnx/model.onnx', 'Model.ONNX', 'k/model.weights.h5'])
      expect(isModelEntry(p), p).toBe(true);
    for (const p of ['a.bin', 'a.onnx.data', 'README.md', 'model.onnx/', 'a.pt']) expect(isModelEntry(p), p).toBe(false);
  });

  it('an .onnx upload is its own entry; its format comes from the name, its cap from the ONNX limits', () => {
    expect(entryOfPart('hub/x/model.onnx')).toBe('hub/x/model.onnx');
    expect(modelFormat(new Map([['x.onnx', new Uint8Array([8, 7])]]), 'x.onnx')).toBe('onnx');
    expect(entryLimit('x.ONNX')).toBe(ONNX_LIMITS.fileBytes);
    expect(() => modelFormat(new Map([['x.pt', new Uint8Array([1])]]), 'x.pt')).toThrow(/expected model.json, .h5\/.hdf5, .keras, .onnx/);
  });
});
