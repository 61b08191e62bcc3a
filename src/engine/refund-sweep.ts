import { sweepRefunds } from './run-once.js';
import type { RouterCore } from './runtime.js';

/** How often a router looks for refunds left undone, bounded either way whatever the lease. */
const MIN_PERIOD_MS = 1_000;
const MAX_PERIOD_MS = 60_000;

/**
 * Looks for refunds whose refunder died before making them, once per run lease (a dead
 * refunder's lease must run out first), between 1 s and a minute. One unref'd timer per router,
 * so it never keeps the process alive; stopped by `close()`. A store without the refund index
 * (a custom store) is never asked.
 */
export class RefundSweep {
  #timer: ReturnType<typeof setInterval> | undefined;
  #running = false;

  constructor(private readonly core: RouterCore) {
    if (core.store.refundsToSettle === undefined) return;
    const period = Math.min(MAX_PERIOD_MS, Math.max(MIN_PERIOD_MS, core.settings.leaseMs));
    this.#timer = setInterval(() => void this.sweep(), period);
    this.#timer.unref();
  }

  /** One sweep now (skipped while one is running); never throws. */
  async sweep(): Promise<number> {
    if (this.#running) return 0;
    this.#running = true;
    try {
      return await sweepRefunds(this.core);
    } catch (error) {
      this.core.logger.warn('looking for refunds left undone failed; the next sweep tries again', { error });
      return 0;
    } finally {
      this.#running = false;
    }
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
