import { HttpError } from '../errors.ts';
import type { ObjectRef } from '../jobs/job.ts';
import { MLFLOW_NAME, MLFLOW_VERSION } from '../storage/mlflow.ts';
import { field } from './parse-json.ts';

/**
 * What an MLflow model-registry webhook asks to scan: a new model version (`model_version.created`), all
 * of its artifacts (the models among them are found at scan time). Other events give nothing.
 */
export function objectsOfMlflowWebhook(body: Record<string, unknown>): ObjectRef[] {
  if (body.entity !== 'model_version' || body.action !== 'created') return [];
  const name = field(body, 'data', 'name');
  const raw = field(body, 'data', 'version');
  const version = typeof raw === 'number' ? String(raw) : raw;
  if (typeof name !== 'string' || !MLFLOW_NAME.test(name))
    throw new HttpError(400, 'bad-payload', 'MLflow webhook: data.name is not a registered model name');
  if (typeof version !== 'string' || !MLFLOW_VERSION.test(version))
    throw new HttpError(400, 'bad-payload', 'MLflow webhook: data.version is not a version number');
  return [{ bucket: `mlflow:${name}`, key: '', versionId: version }];
}
