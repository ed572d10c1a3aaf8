import type * as tfl from '@tensorflow/tfjs-layers';
import { ShapguardError } from './errors.ts';
import type { LoadedModel } from './loaded-model.ts';
import type { Player } from './players.ts';

/**
 * New values for the weights that pruning touches: each pruned channel's kernel slice and bias set to 0,
 * which makes the layer's pre-activation output for that channel exactly 0, as the masks did.
 */
export function prunedWeights(loaded: LoadedModel, model: tfl.LayersModel, pruned: Player[]): Map<string, Float32Array> {
  const changed = new Map<string, Float32Array>();
  const byLayer = new Map<string, number[]>();
  for (const p of pruned) byLayer.set(p.layer, [...(byLayer.get(p.layer) ?? []), p.channel]);
  for (const [layerName, channels] of byLayer) {
    const layer = model.getLayer(layerName);
    for (const v of layer.weights) {
      const short = v.originalName.split('/').at(-1);
      if (short !== 'kernel' && short !== 'bias') continue;
      const loc = loaded.weights.find((w) => w.name === v.originalName);
      if (loc === undefined) throw new ShapguardError('internal', `weight ${v.originalName} of layer ${layerName} is not in the manifest`);
      const values = (changed.get(loc.name) ?? v.read().dataSync().slice()) as Float32Array;
      const outChannels = loc.shape.at(-1)!;
      for (let i = 0; i < values.length; i++) if (channels.includes(i % outChannels)) values[i] = 0;
      changed.set(loc.name, values);
    }
  }
  return changed;
}
