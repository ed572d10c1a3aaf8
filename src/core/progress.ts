/** The stages of a scan, in order, as progress events and the report name them. */
export type StageName =
  'load' | 'synthesis' | 'trigger-reverse' | 'detection' | 'all-to-all' | 'shapley' | 'pruning' | 'verification' | 'save';

/** Progress callback: `fraction` of the current stage done, in [0, 1]. */
export type ProgressFn = (stage: StageName, fraction: number, detail?: string) => void;
