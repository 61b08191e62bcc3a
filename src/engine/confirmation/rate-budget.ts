import type { Telemetry } from '../telemetry/telemetry.js';
import type { AbortLike } from './waiters.js';

/**
 * Per-provider budgets for status reads: a token bucket refilled continuously, plus a queue so
 * that many waiting intents share the reads and the overall rate to a provider never exceeds its
 * budget, however many waiters exist. The queue is served where a payment is most likely just made
 * first: among reads whose payment saw activity in the last AGE_LIMIT_MS (created, link accepted,
 * pay page opened) the most recent goes first; the others take turns in queue order. A read passed
 * over for AGE_LIMIT_MS gets every other token from then on, so a backlog bigger than the budget
 * can serve in that time still moves, and new activity still gets at least half the reads.
 */

/** How many seconds of reads the bucket may save up for a burst. */
const BURST_MS = 3000;
/** Activity this recent puts a read ahead; a read queued this long gets every other token. */
export const AGE_LIMIT_MS = 60_000;

/**
 * One read waiting for a token. A class that is its own abort listener (`handleEvent`): a closure
 * for the grant and one for the abort, per waiting read, weighed ~170 B more.
 */
class QueuedAcquire {
  constructor(
    readonly bucket: TokenBucket,
    readonly resolve: (granted: boolean) => void,
    readonly signal: AbortLike | undefined,
    readonly front: boolean,
    /** When the payment last saw activity. */
    readonly activeAt: number,
    readonly queuedAt: number,
  ) {}

  grant(granted: boolean): void {
    this.signal?.removeEventListener('abort', this);
    this.bucket.told(granted ? 'granted' : 'abandoned');
    this.resolve(granted);
  }

  /** The signal aborted while queued. */
  handleEvent(): void {
    this.bucket.withdraw(this);
    this.grant(false);
  }
}

/** What became of one read's ask for a token: metrics of the budget's use. */
export type ReadOutcome = 'granted' | 'denied' | 'queued' | 'abandoned' | 'returned';

export interface TokenBucketOptions {
  /** Reads allowed per minute; `Infinity` means no limit. */
  perMinute: number;
  now: () => number;
  /** Told what became of each ask (budget metrics). */
  onRead?: ((outcome: ReadOutcome) => void) | undefined;
}

export class TokenBucket {
  readonly #ratePerMs: number;
  readonly #capacity: number;
  readonly #now: () => number;
  #tokens: number;
  #refilledAt: number;
  #pausedUntil = 0;
  /** Reads a person is waiting on, first come first served, ahead of everything else. */
  readonly #front: QueuedAcquire[] = [];
  /** Every other read, in queue order. */
  readonly #queue: QueuedAcquire[] = [];
  /** Whether the last token went to a read passed over too long (they get every other one). */
  #lastToOverdue = false;
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
    return { used, queued: this.#waiting() };
  }

  /** Take a token now if one is free and nobody is queued ahead; never waits. */
  tryTake(): boolean {
    return this.#told(!this.#closed && this.#waiting() === 0 && this.#take());
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
  acquire(signal?: AbortLike, options: { front?: boolean; activeAt?: number } = {}): Promise<boolean> {
    if (this.#closed || signal?.aborted) return Promise.resolve(false);
    if ((this.#waiting() === 0 || options.front === true) && this.#take()) {
      this.#onRead?.('granted');
      return Promise.resolve(true);
    }
    const now = this.#now();
    const front = options.front === true;
    this.#onRead?.('queued');
    return new Promise<boolean>((resolve) => {
      const entry = new QueuedAcquire(this, resolve, signal, front, options.activeAt ?? now, now);
      signal?.addEventListener('abort', entry, { once: true });
      (front ? this.#front : this.#queue).push(entry);
      this.#schedule();
    });
  }

  /** @internal A queued read whose signal aborted leaves the queue. */
  withdraw(entry: QueuedAcquire): void {
    const list = entry.front ? this.#front : this.#queue;
    const index = list.indexOf(entry);
    if (index >= 0) list.splice(index, 1);
    this.#schedule();
  }

  /** @internal */
  told(outcome: ReadOutcome): void {
    this.#onRead?.(outcome);
  }

  #waiting(): number {
    return this.#front.length + this.#queue.length;
  }

  /**
   * The read the next token goes to: a person's first; then, every other token, a read passed
   * over for AGE_LIMIT_MS; else the most recently active read of the last AGE_LIMIT_MS (the
   * earliest queued among equals); else the earliest queued.
   */
  #next(): QueuedAcquire | undefined {
    if (this.#front.length > 0) return this.#front.shift();
    const queue = this.#queue;
    if (queue.length === 0) return undefined;
    const now = this.#now();
    const oldest = queue[0]!;
    if (!this.#lastToOverdue && now - oldest.queuedAt >= AGE_LIMIT_MS) {
      this.#lastToOverdue = true;
      return queue.shift();
    }
    this.#lastToOverdue = false;
    let best = -1;
    let bestAt = now - AGE_LIMIT_MS;
    for (let i = 0; i < queue.length; i++) {
      const activeAt = queue[i]!.activeAt;
      if (activeAt > bestAt || (best === -1 && activeAt === bestAt)) {
        best = i;
        bestAt = activeAt;
      }
    }
    if (best <= 0) return queue.shift();
    return queue.splice(best, 1)[0];
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
    for (const entry of [...this.#front.splice(0), ...this.#queue.splice(0)]) entry.grant(false);
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
    while (this.#waiting() > 0 && this.#take()) this.#next()!.grant(true);
    this.#schedule();
  }

  /** Keep exactly one timer while someone is queued: it fires when the next token is due. */
  #schedule(): void {
    this.#clearTimer();
    if (this.#closed || this.#waiting() === 0) return;
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
