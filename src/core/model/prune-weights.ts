import type * as tfl from '@tensorflow/tfjs-layers';
import { ShapguardError } from '../errors.ts';
import type { LoadedModel } from './loaded-model.ts';
import { layerWeight, type LayerWeight } from './layers.ts';
import { playerKind, type Player } from '../stages/players.ts';

/**
 * New values for the weights that pruning touches: each pruned channel's kernel slice and bias set to 0,
 * which makes the layer's pre-activation output for that channel exactly 0, as the masks did; for each
 * pruned position, the Dense kernel's rows that read that position's features set to 0, as if its input
 * there were 0 (for a pruned cell, the one row block of its channel there). `grids` gives each position layer's [height, width, channels] (PlayerSet.grids).
 */
export function prunedWeights(
  loaded: LoadedModel,
  model: tfl.LayersModel,
  pruned: Player[],
  grids: ReadonlyMap<string, [number, number, number]> = new Map(),
): Map<string, Float32Array> {
  const changed = new Map<string, Float32Array>();
  // Keyed by the weight's manifest name, which is its originalName; a weight touched twice keeps both edits.
  const read = (v: LayerWeight) => (changed.get(v.originalName) ?? v.read().dataSync().slice()) as Float32Array;
  for (const p of pruned.filter((q) => q.position !== null)) {
    const grid = grids.get(p.layer);
    const kernel = layerWeight(model.getLayer(p.layer), 'kernel');
    const loc = kernel && loaded.weights.find((w) => w.name === kernel.originalName);
    if (grid === undefined || loc === undefined)
      throw new ShapguardError('internal', `position player ${p.layer}@${p.position!.join(',')} has no grid or kernel in the manifest`);
    const [, w, c] = grid;
    const units = loc.shape.at(-1)!;
    const values = read(kernel!);
    // A position reads all its channels' rows; a cell one channel's.
    const cell = playerKind(p) === 'cell';
    const first = (p.position![0] * w + p.position![1]) * c + (cell ? p.channel! : 0);
    values.fill(0, first * units, (first + (cell ? 1 : c)) * units);
    changed.set(loc.name, values);
  }
  const byLayer = new Map<string, number[]>();
  for (const p of pruned) if (playerKind(p) === 'channel') byLayer.set(p.layer, [...(byLayer.get(p.layer) ?? []), p.channel!]);
  for (const [layerName, channels] of byLayer) {
    const layer = model.getLayer(layerName);
    for (const v of layer.weights) {
      const short = v.originalName.split('/').at(-1);
      if (short !== 'kernel' && short !== 'bias') continue;
      const loc = loaded.weights.find((w) => w.name === v.originalName);
      if (loc === undefined) throw new ShapguardError('internal', `weight ${v.originalName} of layer ${layerName} is not in the manifest`);
      const values = read(v);
      const outChannels = loc.shape.at(-1)!;
      for (let i = 0; i < values.length; i++) if (channels.includes(i % outChannels)) values[i] = 0;
      changed.set(loc.name, values);
    }
  }
  return changed;
}
