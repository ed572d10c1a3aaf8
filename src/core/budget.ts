/**
 * The scan's two bounds: wall-clock seconds (the CLI's --budget) and model evaluations (--max-evals: rows
 * through the network in full-forward equivalents, deterministic, and what a Worker uses since its clock
 * stands still during computation). Stages get shares; what one stage leaves unused flows to the next.
 */
export class Budget {
  private evalsUsed = 0;
  readonly startedAt: number;

  constructor(
    readonly seconds: number,
    readonly maxEvals: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.startedAt = now();
  }

  get evaluations(): number {
    return this.evalsUsed;
  }

  elapsedSeconds(): number {
    return (this.now() - this.startedAt) / 1000;
  }

  /** Opens a stage entitled to `share` of what is left of both bounds. */
  stage(share: number): Stage {
    const leftSeconds = Math.max(0, this.seconds - this.elapsedSeconds());
    const leftEvals = Math.max(0, this.maxEvals - this.evalsUsed);
    return new Stage(this, this.now() + leftSeconds * share * 1000, this.evalsUsed + leftEvals * share, this.now);
  }

  /** @internal */
  spend(evals: number): void {
    this.evalsUsed += evals;
  }
}

/** Which bound ended a piece of work, if any. */
export type StopReason = 'time' | 'evaluations' | null;

export class Stage {
  private readonly startEvals: number;

  constructor(
    private readonly budget: Budget,
    readonly deadline: number,
    readonly evalLimit: number,
    private readonly now: () => number,
  ) {
    this.startEvals = budget.evaluations;
  }

  spend(evals: number): void {
    this.budget.spend(evals);
  }

  /** True once either bound is reached; evaluation checks come first so --max-evals runs are deterministic. */
  exhausted(): StopReason {
    if (this.budget.evaluations >= this.evalLimit) return 'evaluations';
    if (this.now() >= this.deadline) return 'time';
    return null;
  }

  /** Whether `evals` more evaluations still fit the evaluation bound. */
  fits(evals: number): boolean {
    return this.budget.evaluations + evals <= this.evalLimit;
  }

  get evaluations(): number {
    return this.budget.evaluations - this.startEvals;
  }
}
