/**
 * The scan's two bounds: wall-clock seconds (the CLI's --budget) and model evaluations (--max-evals: rows
 * through the network in full-forward equivalents, deterministic, and what a Worker uses since its clock
 * stands still during computation). Stages get shares; what one stage leaves unused flows to the next.
 */
export class Budget {
  private evalsUsed = 0;
  readonly startedAt: number;

  /**
   * @param onTick where a stage's progress within itself goes (a terminal bar): the share of it done and a
   *   line saying what (steps, classes done); called at most once per percent or change of words.
   */
  constructor(
    readonly seconds: number,
    readonly maxEvals: number,
    private readonly now: () => number = () => performance.now(),
    readonly onTick: ((fraction: number, detail: string) => void) | null = null,
  ) {
    this.startedAt = now();
  }

  get evaluations(): number {
    return this.evalsUsed;
  }

  elapsedSeconds(): number {
    return (this.now() - this.startedAt) / 1000;
  }

  /** What is left of both bounds. */
  left(): { seconds: number; evaluations: number } {
    return { seconds: Math.max(0, this.seconds - this.elapsedSeconds()), evaluations: Math.max(0, this.maxEvals - this.evalsUsed) };
  }

  /** Seconds per evaluation so far in this scan: the rate at which a forecast in evaluations turns into time. */
  secondsPerEvaluation(): number {
    return this.evalsUsed > 0 ? this.elapsedSeconds() / this.evalsUsed : 0;
  }

  /**
   * Opens a stage entitled to `share` of what is left of both bounds; `label` names it in progress ticks
   * where one scan stage has several parts ("check: synthesis").
   */
  stage(share: number, label = ''): Stage {
    const { seconds: leftSeconds, evaluations: leftEvals } = this.left();
    return new Stage(this, this.now() + leftSeconds * share * 1000, this.evalsUsed + leftEvals * share, this.now, label);
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
  private readonly startTime: number;
  private lastTick = '';

  constructor(
    private readonly budget: Budget,
    readonly deadline: number,
    readonly evalLimit: number,
    private readonly now: () => number,
    private readonly label = '',
  ) {
    this.startEvals = budget.evaluations;
    this.startTime = now();
  }

  /**
   * Reports progress within the stage: `done`, the share of its own work done, or the share of its budget
   * spent where that is further (a stage never outruns its budget, so that bounds what is left).
   */
  tick(done: number, detail: string): void {
    const onTick = this.budget.onTick;
    if (onTick === null) return;
    const byEvals = (this.budget.evaluations - this.startEvals) / Math.max(1e-9, this.evalLimit - this.startEvals);
    const byTime = (this.now() - this.startTime) / Math.max(1e-9, this.deadline - this.startTime);
    const fraction = Math.min(1, Math.max(done, byEvals, byTime, 0));
    const words = this.label ? `${this.label}: ${detail}` : detail;
    const key = `${Math.floor(fraction * 100)} ${words}`;
    if (key === this.lastTick) return;
    // A part's first tick starts its own count (the bar restarts its share and time estimate at 0).
    if (this.lastTick === '') onTick(0, words);
    this.lastTick = key;
    onTick(fraction, words);
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
