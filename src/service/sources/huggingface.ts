import { HttpError } from '../errors.ts';
import type { ObjectRef } from '../jobs/job.ts';
import { HUB_REPO, HUB_SHA } from '../storage/hub.ts';
import { field } from './parse-json.ts';

/** The bucket name a Hub repo goes by in jobs and the status API. */
export function hubBucket(repo: string): string {
  return `hf:${repo}`;
}

/**
 * What a Hub webhook asks to scan: a model repo whose content changed (`repo.content` create/update),
 * at the new head commit. The files are listed by the consumer through the Hub API (the webhook does not
 * name them), so the job names the whole repo at that commit (empty key). Other events give nothing.
 */
export function objectsOfHubWebhook(body: Record<string, unknown>): ObjectRef[] {
  const scope = field(body, 'event', 'scope');
  const action = field(body, 'event', 'action');
  if (scope !== 'repo.content' || (action !== 'create' && action !== 'update') || field(body, 'repo', 'type') !== 'model') return [];
  const repo = field(body, 'repo', 'name');
  const sha = field(body, 'repo', 'headSha');
  if (typeof repo !== 'string' || !HUB_REPO.test(repo))
    throw new HttpError(400, 'bad-payload', 'Hugging Face webhook: repo.name is not a repo id');
  if (typeof sha !== 'string' || !HUB_SHA.test(sha))
    throw new HttpError(400, 'bad-payload', 'Hugging Face webhook: repo.headSha is not a commit sha');
  return [{ bucket: hubBucket(repo), key: '', versionId: sha }];
}
