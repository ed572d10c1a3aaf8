import type * as tfl from '@tensorflow/tfjs-layers';
import { loadTfjsModel, writeTfjsModel, type TfjsLoadedModel } from '../src/core/model/tfjs-layers.ts';
import { describeModel, playerLayers } from '../src/core/model/model-info.ts';
import { PlayerSet, playerKey, type Player } from '../src/core/stages/players.ts';
import { prunedWeights } from '../src/core/model/prune-weights.ts';

/** The model with `pruned` zeroed, written and read back as the scan writes a repair (the caller disposes it). */
export async function prunedModel(
  loaded: TfjsLoadedModel,
  pruned: Player[],
  grids?: ReadonlyMap<string, [number, number, number]>,
): Promise<tfl.LayersModel> {
  return (await loadTfjsModel(writeTfjsModel(loaded, prunedWeights(loaded, loaded.model, pruned, grids)), loaded.entry)).model;
}

/**
 * The model with the players a report or a bench run recorded (by key) pruned, as the scan would write
 * it: what a refused or forced candidate does on real data. `layers` as the scan's own option, so the keys
 * resolve among the same players. The caller disposes it.
 */
export async function prunedByKeys(
  files: Map<string, Uint8Array>,
  entry: string,
  keys: readonly string[],
  layers?: string[],
): Promise<tfl.LayersModel> {
  const loaded = await loadTfjsModel(files, entry);
  try {
    const info = describeModel(loaded.model);
    const set = new PlayerSet(info, playerLayers(info, layers));
    const chosen = keys.map((k) => {
      const player = set.players.find((q) => playerKey(q) === k);
      if (player === undefined) throw new Error(`pruned player ${k} is not among the model's players`);
      return player;
    });
    return await prunedModel(loaded, chosen, set.grids);
  } finally {
    loaded.model.dispose();
  }
}
