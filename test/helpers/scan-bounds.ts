/**
 * Every scan in the suite is bounded by evaluations, never by the clock: the clock budget is set far above
 * anything a scan takes, so a loaded CI machine gives the same results as an idle one. 400k evaluations is
 * several times what a default scan of any fixture uses, so the scans run as unbounded ones would.
 */
export const TEST_MAX_EVALS = 400_000;
export const TEST_BUDGET_SECONDS = 100_000;

/** The bounds as scanModel options. */
export const TEST_BOUNDS = { maxEvals: TEST_MAX_EVALS, budgetSeconds: TEST_BUDGET_SECONDS };

/** The bounds as service settings (SCAN_BUDGET_SECONDS is capped at an hour, still far above any scan). */
export const TEST_SCAN_ENV = { SCAN_MAX_EVALS: String(TEST_MAX_EVALS), SCAN_BUDGET_SECONDS: '3600' };

/** A scan command line with the bounds added where the test did not set them itself. */
export function boundedScanArgs(args: string[]): string[] {
  if (args[0] !== 'scan') return args;
  return [
    ...args,
    ...(args.includes('--max-evals') ? [] : ['--max-evals', String(TEST_MAX_EVALS)]),
    ...(args.includes('--budget') ? [] : ['--budget', String(TEST_BUDGET_SECONDS)]),
  ];
}
