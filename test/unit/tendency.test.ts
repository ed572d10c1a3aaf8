import { beforeAll, describe, expect, it } from 'vitest';
import * as tfl from '@tensorflow/tfjs-layers';
import { initWasmBackend } from '../../src/core/tfjs/backend.ts';
import { nodeWasmPath } from '../../src/node/wasm-path.ts';
import { Graph } from '../../src/core/tfjs/graph.ts';
import { DETECT_DEFAULTS, detectTargets, tendencyFlag } from '../../src/core/stages/detection/detect.ts';
import { columnTendency, headCut, measureTendency, TENDENCY_STEPS, tendencyOutlier } from '../../src/core/stages/detection/tendency.ts';
import { describeModel } from '../../src/core/model/model-info.ts';
import { Budget } from '../../src/core/budget.ts';
import { Rng } from '../../src/core/util/rng.ts';

beforeAll(async () => {
  await initWasmBackend({ wasmPath: nodeWasmPath() });
});

describe('head tendency arithmetic', () => {
  it("averages each column's row-normalised logits over the other rows, leaving the diagonal out", () => {
    // Row r: the logits on class r's stand-in. Each row is centred and scaled to unit RMS first, so a row with
    // ten times larger logits weighs the same.
    const rows = [
      [3, 0, 0],
      [0, 30, 60],
      [1, 2, 4],
    ];
    const t = columnTendency(Float32Array.from(rows.flat()), 3);
    const norm = (row: number[]) => {
      const m = row.reduce((a, b) => a + b, 0) / row.length;
      const rms = Math.sqrt(row.reduce((a, b) => a + (b - m) ** 2, 0) / row.length);
      return row.map((v) => (v - m) / rms);
    };
    const [r0, r1, r2] = rows.map(norm);
    expect(t[0]).toBeCloseTo((r1![0]! + r2![0]!) / 2, 6);
    expect(t[1]).toBeCloseTo((r0![1]! + r2![1]!) / 2, 6);
    expect(t[2]).toBeCloseTo((r0![2]! + r1![2]!) / 2, 6);
  });

  it('measures the largest class against the quartiles of all, so one far class does not widen its own yardstick', () => {
    const base = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8];
    const { target, anomaly } = tendencyOutlier([...base, 3]);
    expect(target).toBe(9);
    // numpy's linear quantiles of the ten values: Q1 = 0.225, Q3 = 0.675.
    expect(anomaly).toBeCloseTo((3 - 0.675) / (0.675 - 0.225), 6);
    expect(tendencyOutlier([...base, 3, 30]).target).toBe(10);
    expect(tendencyOutlier([1, 1, 1, 1]).anomaly).toBe(0);
  });
});

describe('the head tendency joins the mask-size rule', () => {
  // Class 2's trigger is 0.3 of the median and 0.6 of the next: not flagged by size and gap alone.
  const norms = [10, 10, 3, 10, 5, 10, 10, 10, 10, 10];
  const detection = () => detectTargets(norms, DETECT_DEFAULTS);

  it('flags the class the head leans to when its trigger is smallish', () => {
    expect(detection().classes.some((c) => c.flagged)).toBe(false);
    expect(tendencyFlag(detection(), { target: 2, anomaly: 0.9, stoppedBy: null }, DETECT_DEFAULTS)).toBe(2);
  });

  it('does not flag on the tendency alone, on a weak one, or on one the budget cut short', () => {
    // Class 0's trigger is the median: the head leaning to it is a natural favourite, not a backdoor.
    expect(tendencyFlag(detection(), { target: 0, anomaly: 5, stoppedBy: null }, DETECT_DEFAULTS)).toBeNull();
    expect(tendencyFlag(detection(), { target: 2, anomaly: 0.5, stoppedBy: null }, DETECT_DEFAULTS)).toBeNull();
    expect(tendencyFlag(detection(), { target: 2, anomaly: 3, stoppedBy: 'evaluations' }, DETECT_DEFAULTS)).toBeNull();
    expect(tendencyFlag(detection(), null, DETECT_DEFAULTS)).toBeNull();
    // Class 4 at 0.5 of the median: above the bound.
    expect(tendencyFlag(detection(), { target: 4, anomaly: 3, stoppedBy: null }, DETECT_DEFAULTS)).toBeNull();
  });

  it('adds nothing where the mask-size rule already flagged', () => {
    const flagged = detectTargets([10, 10, 1, 10, 10, 10, 10, 10, 10, 10], DETECT_DEFAULTS);
    expect(flagged.classes[2]!.flagged).toBe(true);
    expect(tendencyFlag(flagged, { target: 2, anomaly: 3, stoppedBy: null }, DETECT_DEFAULTS)).toBeNull();
  });
});

describe('a model without a Dense head', () => {
  it('has no head to read, so the tendency says nothing rather than guess', () => {
    // Convolutions straight into global pooling: the classes are the last convolution's channels.
    const model = tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [8, 8, 1], filters: 3, kernelSize: 3, activation: 'relu' }),
        tfl.layers.globalAveragePooling2d({}),
        tfl.layers.activation({ activation: 'softmax' }),
      ],
    });
    const info = describeModel(model);
    expect(headCut(info)).toBeNull();
    const stage = new Budget(1e9, 1e6).stage(1);
    expect(
      measureTendency(info, new Float32Array(64), { ...DETECT_DEFAULTS, tendencySteps: TENDENCY_STEPS }, new Rng(1), stage),
    ).toBeNull();
    expect(stage.evaluations).toBe(0);
    model.dispose();
  });
});

describe('Graph.cutBefore', () => {
  it('finds the one value a step and everything after it read, and none around a skip connection', () => {
    const input = tfl.input({ shape: [4] });
    const a = tfl.layers.dense({ name: 'a', units: 4 }).apply(input) as tfl.SymbolicTensor;
    const sum = tfl.layers.add({ name: 'sum' }).apply([a, input]) as tfl.SymbolicTensor;
    const out = tfl.layers.dense({ name: 'out', units: 3 }).apply(sum) as tfl.SymbolicTensor;
    const graph = new Graph(tfl.model({ inputs: input, outputs: out }));
    // From `a` on, only the input is read from before; from `sum` on, both `a` and the input.
    expect(graph.cutBefore(graph.stepOf('a'))).not.toBeNull();
    expect(graph.cutBefore(graph.stepOf('sum'))).toBeNull();
    const cut = graph.cutBefore(graph.stepOf('out'));
    expect(cut).toBe(graph.steps[graph.stepOf('sum')]!.output);
  });
});
