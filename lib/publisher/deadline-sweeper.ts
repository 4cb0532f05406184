/** How often publish deadlines are checked. */
const SWEEP_PERIOD_MS = 50;

/**
 * One timer for every publish deadline of a publisher, instead of one per publish: runs `sweep`
 * periodically while it reports work left, and stops by itself when there is none.
 */
export class DeadlineSweeper {
  private timer?: NodeJS.Timeout;

  /** `sweep` fails what is overdue and returns whether anything is still pending. */
  constructor(private readonly sweep: () => boolean) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (!this.sweep()) this.stop();
    }, SWEEP_PERIOD_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
