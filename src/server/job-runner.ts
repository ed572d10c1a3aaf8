import { deliver } from '../service/jobs/deliver.ts';
import type { JobDeps } from '../service/jobs/deps.ts';
import type { SqliteState } from './sqlite-state.ts';

export interface RunnerEvents {
  onDone?: (id: string, verdict: string | null, status: string) => void;
  onRetry?: (id: string, attempt: number, error: string, afterSeconds: number) => void;
  onDead?: (id: string, attempt: number, error: string) => void;
}

/**
 * Works the SQLite queue with bounded concurrency. Scans are CPU work on one wasm instance, so the default
 * of one job at a time is the fastest; more only overlaps storage I/O. Jobs left running by a killed
 * process are taken up again at start.
 */
export class JobRunner {
  private active = 0;
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly state: SqliteState,
    private readonly deps: JobDeps,
    private readonly concurrency = 1,
    private readonly events: RunnerEvents = {},
  ) {}

  start(): number {
    const recovered = this.state.recover();
    this.started = true;
    this.kick();
    return recovered;
  }

  /** Looks for due jobs now (called after an enqueue); nothing runs before start(). */
  kick(): void {
    if (!this.started || this.stopped) return;
    while (this.active < this.concurrency) {
      const next = this.state.claim(Date.now());
      if (next === null) break;
      this.active++;
      void this.run(next.job, next.attempt).finally(() => {
        this.active--;
        this.kick();
      });
    }
    this.schedule();
    if (this.active === 0 && this.state.nextDue() === null) for (const w of this.idleWaiters.splice(0)) w();
  }

  private schedule(): void {
    clearTimeout(this.timer);
    const due = this.state.nextDue();
    if (due === null || this.stopped) return;
    this.timer = setTimeout(() => this.kick(), Math.max(50, Math.min(due - Date.now(), 60_000)));
    this.timer.unref();
  }

  private async run(job: Parameters<typeof deliver>[0], attempt: number): Promise<void> {
    const decision = await deliver(job, attempt, this.deps);
    // Stopped meanwhile (shutdown): the job stays "running" and is taken up again at the next start.
    if (this.stopped) return;
    if (decision.ack) {
      this.state.finish(job.id, 'done');
      this.events.onDone?.(job.id, 'verdict' in decision.outcome ? decision.outcome.verdict : null, decision.outcome.status);
    } else if (decision.deadLetter) {
      this.state.finish(job.id, 'dead', decision.error);
      this.events.onDead?.(job.id, attempt, decision.error);
    } else {
      this.state.retryLater(job.id, Date.now() + decision.retryAfterSeconds * 1000, decision.error);
      this.events.onRetry?.(job.id, attempt, decision.error, decision.retryAfterSeconds);
    }
  }

  /** Resolves when no job is running or waiting. */
  idle(): Promise<void> {
    if (this.active === 0 && this.state.nextDue() === null) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
