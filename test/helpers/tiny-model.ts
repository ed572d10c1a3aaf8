import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { saveLayersModel } from '../../tools/fixtures/save.ts';

/** A small untrained CNN (optionally with a BatchNormalization after c1) written in the tfjs layers format to a fresh temp folder, `shards` shards. */
export async function writeTinyModel(opts: { shards?: number; dense?: boolean; bn?: boolean } = {}): Promise<string> {
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({
        name: 'c1',
        inputShape: [8, 8, 1],
        filters: 4,
        kernelSize: 3,
        activation: 'relu',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }),
      }),
      ...(opts.bn ? [tfl.layers.batchNormalization({ name: 'bn1' })] : []),
      tfl.layers.conv2d({
        name: 'c2',
        filters: 6,
        kernelSize: 3,
        activation: 'relu',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }),
      }),
      tfl.layers.flatten({ name: 'f' }),
      tfl.layers.dense({ name: 'out', units: 3, activation: 'softmax', kernelInitializer: tfl.initializers.glorotUniform({ seed: 3 }) }),
    ],
  });
  if (opts.bn) {
    // Running statistics a trained model could have (untrained ones are 0 and 1, which nothing tests).
    model
      .getLayer('bn1')
      .setWeights([
        tf.tensor1d([1.2, 0.8, 1, 1.5]),
        tf.tensor1d([0.1, -0.2, 0, 0.3]),
        tf.tensor1d([0.3, 0.1, 0.5, 0.2]),
        tf.tensor1d([0.05, 0.2, 0.1, 0.3]),
      ]);
  }
  const dir = mkdtempSync(join(tmpdir(), 'shapguard-tiny-'));
  const total = model.countParams() * 4;
  await saveLayersModel(model, dir, opts.shards ? Math.ceil(total / opts.shards / 4) * 4 : undefined);
  model.dispose();
  return dir;
}

/** Every file of a folder, by name. */
export function readDir(dir: string): Map<string, Uint8Array> {
  return new Map(readdirSync(dir).map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))]));
}
