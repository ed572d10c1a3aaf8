/**
 * How a scan fits its memory budget: how many rows go through the model in one pass, and how big each
 * stage's batches are. Pure arithmetic on the model's sizes, so it can be tested without a model.
 */

const MiB = 1024 * 1024;
/** The activation budget before the model is known (the report's first value). */
export const DEFAULT_MEMORY = 64 * MiB;
/** Trigger-reverse rows per step: as many as this many bytes of layer outputs (× 3) hold. */
const STEP_ROW_BYTES = 64 * MiB;
/**
 * A Worker isolate's 128 MB (122 MiB) holds, besides the activations: the wasm module and runtime (16-20
 * MiB of heap before any tensor), the JS heap (up to about 20 MiB), the weights twice (the model's file
 * bytes and its tensors), and the wasm heap's slack: it grows in 20% steps and never shrinks, about 1.33
 * MiB per MiB of activation budget. Measured on CNNs of 2.9M and 5.2M parameters (bench/memory.ts).
 */
const ISOLATE_BYTES = 128e6;
const RESERVED_BYTES = 37 * MiB;
const HEAP_SLACK = 1.33;
const MIN_MEMORY = 8 * MiB;
/**
 * What one row of a gradient pass really holds in the wasm heap, per byte of the layer outputs: measured
 * at 8-12× (pre-activations, activations, their gradients, the convolutions' working copies). Forward
 * passes hold about 4× but get the same rows: larger forward batches after the gradient stages made the
 * fragmented heap grow another step (93 -> 111 MiB on the 5.2M-parameter CNN).
 */
const GRADIENT_ROW_FACTOR = 12;

/** The default activation budget: what is left of a Worker isolate once the weights are in. */
export function defaultMemory(parameters: number): number {
  const weights = 4 * parameters;
  const room = (ISOLATE_BYTES - RESERVED_BYTES - 2 * weights) / HEAP_SLACK;
  return Math.max(MIN_MEMORY, Math.min(DEFAULT_MEMORY, Math.floor(room)));
}

/** The sizes of a model the plan needs. */
export interface ModelSizes {
  parameters: number;
  classes: number;
  /** Float values each step of the graph outputs per row, in graph order. */
  stepOutputs: number[];
  /** The step where Shapley evaluation starts from cached activations (the first player layer). */
  firstPlayerStep: number;
}

export interface ScanPlan {
  /** The activation budget, bytes. */
  memory: number;
  /** Rows per gradient (and forward) pass within the memory budget. */
  passRows: number;
  /** Trigger-reverse images per target: fewer when a row is big, so a step takes about as long on a big model. */
  triggerImagesPerTarget: number;
  /** Trigger-reverse rows per gradient pass (at least one target's images). */
  triggerRowsPerPass: number;
  /** Images per target in the recheck after pruning, whose passes fit the memory budget like the first reverse's. */
  recheckImagesPerTarget: number;
  /** Shapley coalitions per tail pass over `rows` stamped images, within the memory budget. */
  shapleyBatch(rows: number): number;
}

/** Bytes one row's layer outputs take from step `fromStep` on. */
export function bytesPerRow(stepOutputs: readonly number[], fromStep: number): number {
  let total = 0;
  for (const n of stepOutputs.slice(fromStep)) total += n * 4;
  return total;
}

/**
 * The plan for a model of `sizes` under `memoryOption` bytes (default: what a Worker isolate leaves), with
 * the configured trigger images per target and Shapley batch as upper bounds. Trigger rows per step do not
 * depend on the memory budget, so the findings do not either; only how they are split into passes does.
 */
export function planScan(
  sizes: ModelSizes,
  memoryOption: number | undefined,
  wanted: { triggerImagesPerTarget: number; shapleyBatch: number },
): ScanPlan {
  const memory = memoryOption ?? defaultMemory(sizes.parameters);
  const rowBytes = bytesPerRow(sizes.stepOutputs, 0);
  const fullRow = rowBytes * 3;
  const passRows = Math.max(1, Math.floor(memory / (rowBytes * GRADIENT_ROW_FACTOR)));
  const rowsFit = Math.max(sizes.classes * 2, Math.floor(STEP_ROW_BYTES / fullRow));
  const triggerImagesPerTarget = Math.max(2, Math.min(wanted.triggerImagesPerTarget, Math.floor(rowsFit / sizes.classes)));
  const tailRow = bytesPerRow(sizes.stepOutputs, sizes.firstPlayerStep) * 2;
  return {
    memory,
    passRows,
    triggerImagesPerTarget,
    triggerRowsPerPass: Math.max(triggerImagesPerTarget, passRows),
    recheckImagesPerTarget: Math.min(wanted.triggerImagesPerTarget, Math.max(2, passRows)),
    shapleyBatch: (rows) => Math.max(4, Math.min(wanted.shapleyBatch, Math.floor(memory / (tailRow * rows)))),
  };
}
