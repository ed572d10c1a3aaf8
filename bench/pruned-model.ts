import type * as tfl from '@tensorflow/tfjs-layers';
import { loadTfjsModel, writeTfjsModel, type TfjsLoadedModel } from '../src/core/model/tfjs-layers.ts';
import type { Player } from '../src/core/stages/players.ts';
import { prunedWeights } from '../src/core/model/prune-weights.ts';

/** The model with `pruned` zeroed, written and read back as the scan writes a repair (the caller disposes it). */
export async function prunedModel(
  loaded: TfjsLoadedModel,
  pruned: Player[],
  grids?: ReadonlyMap<string, [number, number, number]>,
): Promise<tfl.LayersModel> {
  return (await loadTfjsModel(writeTfjsModel(loaded, prunedWeights(loaded, loaded.model, pruned, grids)), loaded.entry)).model;
}
