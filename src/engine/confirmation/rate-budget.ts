import type { Telemetry } from '../telemetry/telemetry.js';

/**
 * Per-provider budgets for status reads: a token bucket refilled continuously, plus a queue so
 * that many waiting intents share the reads and the overall rate to a provider never exceeds its
 * budget, however many waiters exist. The queue is served where a payment is most likely just made
 * first: a read whose payment saw activity recently (a payment just created, a link just accepted,
 * a pay page just opened) goes ahead of older ones; an older read gains on newer ones while it
 * waits, so none waits more than about AGE_LIMIT_MS behind a stream of new ones.
 */

/** How many seconds of reads the bucket may save up for a burst. */
const BURST_MS = 3000;
/** Activity older than this when a read queues counts as this old: it bounds how long any read is passed over. */
export const AGE_LIMIT_MS = 60_000;

interface QueuedAcquire {
  grant: (granted: boolean) => void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
  /** Higher is served first; see `rank`. */
  rank: number;
}

/**
 * The queue order of a read queued at `queuedAt` whose payment last saw activity at `activeAt`
 * (higher is served first). Reads are served in queue order, except that a read for a payment
 * active just now counts as queued AGE_LIMIT_MS earlier, one active half that long ago as queued
 * half that earlier, and so on: recent activity goes first, and no read is passed over for longer
 * than AGE_LIMIT_MS by reads queued after it.
 */
function rank(activeAt: number, queuedAt: number): number {
  const age = Math.min(AGE_LIMIT_MS, Math.max(0, queuedAt - activeAt));
  return AGE_LIMIT_MS - age - queuedAt;
}

/** What became of one read's ask for a token: metrics of the budget's use. */
export type ReadOutcome = 'granted' | 'denied' | 'queued' | 'abandoned' | 'returned';

export interface TokenBucketOptions {
  /** Reads allowed per minute; `Infinity` means no limit. */
  perMinute: number;
  now: () => number;
  /** Told of every grant, refusal, wait, abandoned wait and returned token. */
  onRead?: ((outcome: ReadOutcome) => void) | undefined;
}

export class TokenBucket {
  readonly #ratePerMs: number;
  readonly #capacity: number;
  readonly #now: () => number;
  #tokens: number;
  #refilledAt: number;
  #pausedUntil = 0;
  readonly #queue: QueuedAcquire[] = [];
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #onRead: ((outcome: ReadOutcome) => void) | undefined;

  constructor(options: TokenBucketOptions) {
    this.#onRead = options.onRead;
    this.#ratePerMs = options.perMinute / 60_000;
    this.#capacity = Math.max(1, this.#ratePerMs * BURST_MS);
    this.#now = options.now;
    this.#tokens = this.#capacity;
    this.#refilledAt = this.#now();
  }

  get unlimited(): boolean {
    return this.#ratePerMs === Number.POSITIVE_INFINITY;
  }

  /** The share of the bucket spent now (0 full, 1 empty), and how many reads wait for a token. */
  use(): { used: number; queued: number } {
    if (!this.unlimited && !this.#closed) this.#refill();
    const used = this.unlimited ? 0 : Math.max(0, Math.min(1, 1 - this.#tokens / this.#capacity));
    return { used, queued: this.#queue.length };
  }

  /** Take a token now if one is free and nobody is queued ahead; never waits. */
  tryTake(): boolean {
    return this.#told(!this.#closed && this.#queue.length === 0 && this.#take());
  }

  /** Take a token now if one is free, ahead of anyone queued (a read a person is waiting on); never waits. */
  tryTakeFront(): boolean {
    return this.#told(!this.#closed && this.#take());
  }

  #told(granted: boolean): boolean {
    this.#onRead?.(granted ? 'granted' : 'denied');
    return granted;
  }

  /**
   * Wait for a token (`front`: ahead of everyone queued, for a read a person is waiting on;
   * `activeAt`: when the payment last saw activity, so the most recently active is read first;
   * without it, the read counts as active when it queues, and equal ones are served in order).
   * Resolves true with the token taken, or false when `signal` aborts or the bucket closes first.
   */
  acquire(signal?: AbortSignal, options: { front?: boolean; activeAt?: number } = {}): Promise<boolean> {
    if (this.#closed || signal?.aborted) return Promise.resolve(false);
    if ((this.#queue.length === 0 || options.front === true) && this.#take()) {
      this.#onRead?.('granted');
      return Promise.resolve(true);
    }
    const now = this.#now();
    this.#onRead?.('queued');
    return new Promise<boolean>((resolve) => {
      const entry: QueuedAcquire = {
        grant: (granted) => {
          signal?.removeEventListener('abort', entry.onAbort);
          this.#onRead?.(granted ? 'granted' : 'abandoned');
          resolve(granted);
        },
        signal,
        rank: options.front === true ? Number.POSITIVE_INFINITY : rank(options.activeAt ?? now, now),
        onAbort: () => {
          const index = this.#queue.indexOf(entry);
          if (index >= 0) this.#queue.splice(index, 1);
          entry.grant(false);
          this.#schedule();
        },
      };
      signal?.addEventListener('abort', entry.onAbort, { once: true });
      this.#enqueue(entry);
      this.#schedule();
    });
  }

  /** Insert by rank, highest first; after every entry of the same rank (first come, first served among equals). */
  #enqueue(entry: QueuedAcquire): void {
    const queue = this.#queue;
    if (entry.rank === Number.POSITIVE_INFINITY) {
      queue.unshift(entry);
      return;
    }
    let low = 0;
    let high = queue.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((queue[mid] as QueuedAcquire).rank >= entry.rank) low = mid + 1;
      else high = mid;
    }
    if (low === queue.length) queue.push(entry);
    else queue.splice(low, 0, entry);
  }

  /** Give back a token that was taken but not spent on a request. */
  refund(): void {
    if (this.unlimited || this.#closed) return;
    this.#onRead?.('returned');
    this.#refill();
    this.#tokens = Math.min(this.#capacity, this.#tokens + 1);
    this.#drain();
  }

  /** The provider asked us to back off (429 with Retry-After): no reads before `untilMs`. */
  pause(untilMs: number): void {
    this.#refill();
    this.#tokens = 0;
    this.#pausedUntil = Math.max(this.#pausedUntil, untilMs);
    this.#schedule();
  }

  /** Waiters still queued get `false`; the timer is cleared. */
  close(): void {
    this.#closed = true;
    this.#clearTimer();
    for (const entry of this.#queue.splice(0)) entry.grant(false);
  }

  #take(): boolean {
    if (this.unlimited) return this.#now() >= this.#pausedUntil;
    this.#refill();
    if (this.#now() < this.#pausedUntil || this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  #refill(): void {
    const now = this.#now();
    const from = Math.max(this.#refilledAt, this.#pausedUntil);
    if (now > from && !this.unlimited) {
      this.#tokens = Math.min(this.#capacity, this.#tokens + (now - from) * this.#ratePerMs);
    }
    this.#refilledAt = Math.max(this.#refilledAt, now);
  }

  #drain(): void {
    while (this.#queue.length > 0 && this.#take()) this.#queue.shift()!.grant(true);
    this.#schedule();
  }

  /** Keep exactly one timer while someone is queued: it fires when the next token is due. */
  #schedule(): void {
    this.#clearTimer();
    if (this.#closed || this.#queue.length === 0) return;
    this.#refill();
    const now = this.#now();
    const untilToken = this.unlimited ? 0 : Math.max(0, (1 - this.#tokens) / this.#ratePerMs);
    const waitMs = Math.max(this.#pausedUntil - now, untilToken, 1);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#drain();
    }, Math.ceil(waitMs));
    this.#timer.unref();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/**
 * One token bucket per provider id, sized from the provider's `statusReadsPerMinute`. With
 * telemetry: `payrouter.rate_budget.reads` counts each ask by outcome, and two gauges read at
 * collection say how much of each provider's bucket is spent and how many reads wait.
 */
export class RateBudget {
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #share: number;
  readonly #now: () => number;
  readonly #telemetry: Telemetry | undefined;
  readonly #unregister: Array<() => void> = [];

  constructor(options: { share: number; now: () => number; telemetry?: Telemetry }) {
    this.#share = options.share;
    this.#now = options.now;
    this.#telemetry = options.telemetry;
  }

  bucket(providerId: string, statusReadsPerMinute: number): TokenBucket {
    let bucket = this.#buckets.get(providerId);
    if (bucket === undefined) {
      if (this.#buckets.size === 0) this.#observe();
      bucket = new TokenBucket({
        perMinute: statusReadsPerMinute * this.#share,
        now: this.#now,
        onRead: this.#counter(providerId),
      });
      this.#buckets.set(providerId, bucket);
    }
    return bucket;
  }

  close(): void {
    for (const bucket of this.#buckets.values()) bucket.close();
    for (const unregister of this.#unregister.splice(0)) unregister();
  }

  #counter(providerId: string): ((outcome: ReadOutcome) => void) | undefined {
    const telemetry = this.#telemetry;
    if (telemetry === undefined) return undefined;
    // One attributes object per outcome, made once: counting a read allocates nothing.
    const attributes = {} as Record<ReadOutcome, Record<string, string>>;
    for (const outcome of ['granted', 'denied', 'queued', 'abandoned', 'returned'] as const)
      attributes[outcome] = { 'payrouter.provider': providerId, 'payrouter.rate_budget.outcome': outcome };
    return (outcome) => telemetry.count('payrouter.rate_budget.reads', attributes[outcome]);
  }

  #observe(): void {
    const telemetry = this.#telemetry;
    if (telemetry === undefined) return;
    this.#unregister.push(
      telemetry.gauge(
        'payrouter.rate_budget.used',
        "Share of the provider's status-read budget spent now (0 to 1)",
        (result) => {
          for (const [id, bucket] of this.#buckets)
            if (!bucket.unlimited) result.observe(bucket.use().used, { 'payrouter.provider': id });
        },
      ),
      telemetry.gauge(
        'payrouter.rate_budget.queued',
        'Status reads waiting for the read budget',
        (result) => {
          for (const [id, bucket] of this.#buckets)
            result.observe(bucket.use().queued, { 'payrouter.provider': id });
        },
      ),
    );
  }
}
