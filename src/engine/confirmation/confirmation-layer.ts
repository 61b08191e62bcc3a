import { LRUCache } from 'lru-cache';
import { z } from 'zod';
import { ConfigError, ProviderError } from '../../core/errors.js';
import type { IntentRecord, ProviderAttempt } from '../../core/intent/record.js';
import { isFinalStatus, PAYMENT_STATUSES, type PaymentStatus } from '../../core/intent/status.js';
import { type Logger, silentLogger } from '../../core/logger.js';
import type { PaymentProvider, ProviderPaymentState } from '../../core/provider.js';
import type { PaymentStore, StatusChange } from '../../store/types.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import { RateBudget, type TokenBucket } from './rate-budget.js';
import { applyProviderStateToStore, type PaidClaim } from './status-update.js';
import { type PollPlan, type QueuedRead, WaiterRegistry, type WaitHost, WaitRun } from './waiters.js';

/**
 * "Is intent X paid?": answered from a cache when it can, with concurrent checks coalesced into one
 * provider read (lru-cache `fetch`), polling with back-off under a per-provider rate budget, and
 * waiters woken at once when any instance publishes a status change for their intent.
 */

export interface ConfirmationOptions {
  store: PaymentStore;
  providers: ReadonlyMap<string, PaymentProvider>;
  logger?: Logger;
  /** How long a non-final status read stays fresh in the cache (default 1000 ms). */
  pendingTtlMs?: number;
  /** Poll back-off: first delay, factor, max delay (defaults 500 ms, 1.5, 5000 ms). */
  /** `jitter`: each poll delay is drawn from ±this fraction around its back-off step (default 0.2). */
  poll?: { initialMs?: number; factor?: number; maxMs?: number; jitter?: number };
  /** Share of each provider's statusReadsPerMinute we allow ourselves (default 0.8). */
  budgetShare?: number;
  /**
   * Providers whose outcome is pushed to us (verified webhooks, or redirects to our return page):
   * waits on their payments poll only as a slow fallback, so a payment costs no status reads
   * beyond the one the return page makes.
   */
  pushed?: (providerId: string) => boolean;
  now?: () => number;
  /** Status changes this layer writes and the read budget's use, as metrics. */
  telemetry?: Telemetry | undefined;
  /** Announces each payment this layer's writes make paid (ledger, `onPaid`), once, by the writer. */
  onPaid?: ((intent: IntentRecord) => Promise<void>) | undefined;
}

export interface Confirmation {
  intent: IntentRecord;
  /** The effective status: the stored status, or 'unknown' when the provider could not be reached and the stored status is not final. */
  status: PaymentStatus;
  /** The provider failure behind an 'unknown', if any. */
  error?: ProviderError;
}

export interface WaitForOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  /** Called after each check (used for MCP progress notifications). */
  onPoll?: (confirmation: Confirmation) => void;
  /** Resolve early when this returns true, even though the status is not final. */
  until?: (confirmation: Confirmation) => boolean;
}

/** Final statuses change only through a published StatusChange, which drops the entry. */
const FINAL_TTL_MS = 5 * 60_000;
const CACHE_MAX = 50_000;
/** Longest a fresh check (someone just paid) waits for the read budget before settling for the stored status. */
const FRESH_WAIT_MS = 3000;
/** First poll and poll interval floor for payments whose outcome is pushed to us. */
const PUSHED_POLL_MS = 5000;
/** Pause after a 429 that did not say how long to wait. */
const DEFAULT_RATE_LIMIT_PAUSE_MS = 1000;

const optionsSchema = z.object({
  pendingTtlMs: z.number().int().positive().optional(),
  poll: z
    .object({
      initialMs: z.number().positive().optional(),
      factor: z.number().min(1).optional(),
      maxMs: z.number().positive().optional(),
      jitter: z.number().min(0).max(0.5).optional(),
    })
    .optional(),
  budgetShare: z.number().gt(0).max(1).optional(),
});

const providerStateSchema = z.object({
  paymentId: z.string().min(1),
  status: z.enum(PAYMENT_STATUSES),
  rawStatus: z.string(),
  /** What was paid, checked against the intent by the status write path. */
  paid: z.object({ minor: z.number().int().safe(), currency: z.string().min(1).max(16) }).optional(),
});

/** Where a cached answer came from: `denied` means the rate budget kept us from asking. */
type AnswerSource = 'provider' | 'store' | 'denied' | 'missing';

interface CacheEntry {
  confirmation: Confirmation | undefined;
  source: AnswerSource;
}

/** A token a waiter already took for this read, so the read does not take a second one. */
interface ReadContext {
  token?: { providerId: string; used: boolean };
  /** The caller's copy of the intent, read just before: saves the read's own store read. */
  known?: IntentRecord;
  /** The run claim of the caller that started this read, for the write that makes it paid. */
  claim?: PaidClaim;
}

/** A provider read in progress: the version it wrote, so its own StatusChange echo keeps its result. */
interface Flight {
  wroteVersion: number;
}

function storedAnswer(intent: IntentRecord): Confirmation {
  return { intent, status: intent.status };
}

function asProviderError(providerId: string, error: unknown): ProviderError {
  if (error instanceof ProviderError) return error;
  return new ProviderError(providerId, 'provider_unavailable', 'status read failed unexpectedly', {
    cause: error,
  });
}

export class ConfirmationLayer {
  readonly #store: PaymentStore;
  readonly #providers: ReadonlyMap<string, PaymentProvider>;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #pushed: (providerId: string) => boolean;
  readonly #pendingTtlMs: number;
  readonly #poll: { initialMs: number; factor: number; maxMs: number; jitter: number };
  readonly #budget: RateBudget;
  readonly #telemetry: Telemetry | undefined;
  readonly #onPaid: ((intent: IntentRecord) => Promise<void>) | undefined;
  readonly #cache: LRUCache<string, CacheEntry, ReadContext>;
  readonly #waiters = new WaiterRegistry();
  readonly #waitHost: WaitHost;
  readonly #flights = new Map<string, Flight>();
  /** When a payment last saw activity a payer causes (a link accepted, a pay page opened): read first. */
  readonly #activity = new Map<string, number>();
  /** The latest version announced per intent (status changes from every instance). */
  readonly #announced = new Map<string, number>();
  readonly #unsubscribe: () => void;
  #closed = false;

  constructor(options: ConfirmationOptions) {
    const parsed = optionsSchema.safeParse(options);
    if (!parsed.success) {
      throw new ConfigError(`Invalid confirmation options: ${z.prettifyError(parsed.error)}`);
    }
    for (const [id, provider] of options.providers) {
      const perMinute = provider.capabilities.statusReadsPerMinute;
      if (!(perMinute > 0)) {
        throw new ConfigError(
          `Provider "${id}": capabilities.statusReadsPerMinute must be a positive number, got ${perMinute}`,
        );
      }
    }
    this.#store = options.store;
    this.#providers = options.providers;
    this.#logger = options.logger ?? silentLogger;
    this.#now = options.now ?? (() => Date.now());
    this.#pushed = options.pushed ?? (() => false);
    this.#pendingTtlMs = parsed.data.pendingTtlMs ?? 1000;
    this.#poll = {
      initialMs: parsed.data.poll?.initialMs ?? 500,
      factor: parsed.data.poll?.factor ?? 1.5,
      maxMs: parsed.data.poll?.maxMs ?? 5000,
      jitter: parsed.data.poll?.jitter ?? 0.2,
    };
    this.#telemetry = options.telemetry;
    this.#onPaid = options.onPaid;
    this.#budget = new RateBudget({
      share: parsed.data.budgetShare ?? 0.8,
      now: this.#now,
      ...(options.telemetry ? { telemetry: options.telemetry } : {}),
    });
    this.#cache = new LRUCache<string, CacheEntry, ReadContext>({
      // Bounded by size, not `max`: `max` preallocates every slot, and deleting the last entry then
      // clears all of them (about 0.2 ms on every completed call of a quiet server).
      maxSize: CACHE_MAX,
      sizeCalculation: () => 1,
      ttl: this.#pendingTtlMs,
      // No debounce timer inside lru-cache: read the clock on every check.
      ttlResolution: 0,
      perf: { now: this.#now },
      // A status change drops the entry while a read may be running: its callers still get the
      // answer, but the cache does not keep it.
      ignoreFetchAbort: true,
      fetchMethod: (intentId, _stale, { options: entryOptions, context }) =>
        this.#read(intentId, context, (ttl) => {
          entryOptions.ttl = ttl;
        }),
    });
    // What the waiters' loop asks of this layer: one object per layer, not per waiter.
    this.#waitHost = {
      poll: this.#poll,
      pushedDelay: (start, timeoutMs) => {
        const providerId = start?.attempts.at(-1)?.providerId;
        if (providerId === undefined || !this.#pushed(providerId)) return undefined;
        // Still read once within the wait as a fallback (a webhook not set up, a tab closed early).
        return Math.min(PUSHED_POLL_MS, timeoutMs / 2);
      },
      get: (intentId) => this.#store.get(intentId),
      storeAnswer: (intentId) => this.#storeAnswer(intentId),
      plan: (intentId, latest) => this.#pollPlan(intentId, latest),
      read: (intentId, queued) => this.#pollRead(intentId, queued),
      notify: (options, answer) => this.#notifyPoll(options, answer),
      done: (intentId, run) => this.#waiters.remove(intentId, run),
    };
    this.#unsubscribe = this.#store.subscribe((change) => this.#onStatusChange(change));
  }

  /**
   * One status answer. Final statuses come from the store/cache without a provider call; otherwise
   * at most one provider read per intent per pendingTtlMs, shared by all concurrent callers, and only
   * when the provider's rate budget allows (else the stored status). Undefined for an unknown intent.
   */
  async check(
    intentId: string,
    options: {
      fresh?: boolean;
      /**
       * With `fresh`: the caller's copy of the intent, read just before. The check starts from it
       * instead of reading the store, unless something newer may have happened meanwhile.
       */
      known?: IntentRecord | undefined;
      /**
       * With `fresh`: the caller is about to run the payment once paid. If this check's own
       * provider read finds it paid, the claim goes into the write that records it
       * (`claim.claimed` then says so); a check that joins a read in flight, or whose write does
       * not make the payment paid, leaves it unset.
       */
      claim?: PaidClaim | undefined;
    } = {},
  ): Promise<Confirmation | undefined> {
    if (this.#closed) return this.#storeAnswer(intentId);
    if (options.fresh === true) return this.#freshCheck(intentId, options.known, options.claim);
    const entry = await this.#cache.fetch(intentId, { context: {} });
    return entry?.confirmation;
  }

  /**
   * The payer just did something that often comes right before paying (accepted the link, opened
   * the pay page): this payment's next poll goes ahead of older ones in the provider's budget.
   */
  noteActivity(intentId: string): void {
    if (this.#closed) return;
    this.#activity.delete(intentId);
    this.#activity.set(intentId, this.#now());
    // Oldest first in a Map: keep it bounded like the cache.
    if (this.#activity.size > CACHE_MAX) {
      const oldest = this.#activity.keys().next().value;
      if (oldest !== undefined) this.#activity.delete(oldest);
    }
    // A poll already queued for a token is re-queued at its new place, and the back-off starts over.
    this.#waiters.wake(intentId);
  }

  /**
   * A read that starts after this call: one already in flight may predate the payment, so it is
   * waited out rather than joined. It goes ahead of queued polls in the budget, waiting at most
   * FRESH_WAIT_MS for a token: a person who just paid is waiting on it (return page, retry).
   */
  async #freshCheck(
    intentId: string,
    known: IntentRecord | undefined,
    claim: PaidClaim | undefined,
  ): Promise<Confirmation | undefined> {
    let copy = known?.id === intentId ? known : undefined;
    if (this.#flights.has(intentId)) {
      // That read may have learned what the copy does not know.
      copy = undefined;
      await this.#cache.fetch(intentId, { context: {} }).catch(() => undefined);
    }
    // A copy older than a version this process has seen announced (another instance wrote) would
    // spend a provider read (the scarcest thing) on a payment perhaps already known to be paid.
    if (copy !== undefined && this.#newerThan(copy)) copy = undefined;
    const intent = copy ?? (await this.#store.get(intentId));
    if (intent === undefined) return undefined;
    const target = this.#readTarget(intent);
    if (target === undefined) {
      // Only the store can answer: from the read just made, or a read of its own (not the copy).
      const context: ReadContext = copy === undefined ? { known: intent } : {};
      return (await this.#cache.fetch(intentId, { forceRefresh: true, context }))?.confirmation;
    }
    const { attempt, bucket } = target;
    // The timeout signal (a timer) is made only when there is no token to take at once. A token
    // taken at once means nothing ran since the read above: the read below starts from that copy.
    const atOnce = bucket.tryTakeFront();
    const granted = atOnce || (await bucket.acquire(AbortSignal.timeout(FRESH_WAIT_MS), { front: true }));
    // Only the read this call starts uses its context: a caller that joins one in flight attaches
    // no claim (and takes no lease).
    const context: ReadContext = {
      ...(granted ? { token: { providerId: attempt.providerId, used: false } } : {}),
      ...(atOnce ? { known: intent } : {}),
      ...(claim === undefined ? {} : { claim }),
    };
    try {
      return (await this.#cache.fetch(intentId, { forceRefresh: true, context }))?.confirmation;
    } finally {
      if (context.token?.used === false) bucket.refund();
    }
  }

  /**
   * Resolve as soon as the intent's status is final (or `until` returns true), or when timeoutMs
   * passes / signal aborts (then with the latest confirmation). Polls with back-off; woken at once
   * by status-change notifications from any instance.
   */
  waitFor(intentId: string, options: WaitForOptions): Promise<Confirmation | undefined> {
    return new Promise((resolve, reject) => {
      const run = new WaitRun(this.#waitHost, intentId, options, resolve, reject);
      this.#waiters.add(intentId, run);
      run.start(this.#closed);
    });
  }

  /**
   * Apply a status learned out of band (verified webhook, return page read): forward-only, CAS,
   * publishes a StatusChange, wakes local waiters, drops the cached answer. Returns the stored intent
   * (unchanged when the transition is not forward), or undefined for an unknown intent.
   */
  async applyProviderState(
    intentId: string,
    providerId: string,
    state: ProviderPaymentState,
  ): Promise<IntentRecord | undefined> {
    const parsed = providerStateSchema.safeParse(state);
    if (!parsed.success) {
      throw new ProviderError(providerId, 'malformed_response', 'payment state has an invalid shape');
    }
    const update = await applyProviderStateToStore(this.#store, intentId, providerId, parsed.data, {
      now: this.#now,
      logger: this.#logger,
      telemetry: this.#telemetry,
      onPaid: this.#onPaid,
    });
    if (update === undefined) return undefined;
    if (update.written && !this.#closed) {
      // Dropped rather than overwritten: a newer write by another instance may already have landed,
      // and the next check re-reads the store (no provider call once the status is final).
      this.#cache.delete(intentId);
      if (update.statusChanged) this.#waiters.wake(intentId);
    }
    return update.intent;
  }

  /** Stop timers, unsubscribe from the store; pending waiters resolve with their latest state. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    this.#waiters.stopAll();
    this.#budget.close();
    this.#cache.clear();
    this.#activity.clear();
    this.#announced.clear();
  }

  /** The cache's fetchMethod: one read of one intent, shared by every concurrent caller. */
  async #read(intentId: string, context: ReadContext, setTtl: (ttl: number) => void): Promise<CacheEntry> {
    const flight: Flight = { wroteVersion: 0 };
    this.#flights.set(intentId, flight);
    try {
      const intent = context.known?.id === intentId ? context.known : await this.#store.get(intentId);
      if (intent === undefined) return { confirmation: undefined, source: 'missing' };
      setTtl(this.#ttlFor(intent.status));
      const attempt = intent.attempts.at(-1);
      if (isFinalStatus(intent.status) || attempt === undefined || isFinalStatus(attempt.status)) {
        return { confirmation: storedAnswer(intent), source: 'store' };
      }
      const provider = this.#providers.get(attempt.providerId);
      if (provider === undefined) {
        this.#logger.warn('intent uses a provider this instance does not have', {
          intentId,
          providerId: attempt.providerId,
        });
        return { confirmation: storedAnswer(intent), source: 'store' };
      }
      const bucket = this.#bucketFor(attempt.providerId, provider);
      const token = context.token;
      const prepaid = token !== undefined && !token.used && token.providerId === attempt.providerId;
      if (prepaid) token.used = true;
      if (!prepaid && !bucket.tryTake()) return { confirmation: storedAnswer(intent), source: 'denied' };

      let state: ProviderPaymentState;
      try {
        state = providerStateSchema.parse(await provider.getPayment(attempt.paymentId));
      } catch (error) {
        const failure =
          error instanceof z.ZodError
            ? new ProviderError(
                attempt.providerId,
                'malformed_response',
                'payment state has an invalid shape',
              )
            : asProviderError(attempt.providerId, error);
        this.#onReadFailure(bucket, failure);
        this.#logger.warn('status read failed', { intentId, providerId: attempt.providerId, error: failure });
        return { confirmation: { intent, status: 'unknown', error: failure }, source: 'provider' };
      }

      const update = await applyProviderStateToStore(this.#store, intentId, attempt.providerId, state, {
        now: this.#now,
        logger: this.#logger,
        known: intent,
        telemetry: this.#telemetry,
        onPaid: this.#onPaid,
        claim: context.claim,
        onWritten: (record) => {
          flight.wroteVersion = record.version;
        },
      });
      if (update === undefined) return { confirmation: undefined, source: 'missing' };
      const latest =
        update.intent.status === 'paid' ? update.intent : await this.#readEarlierAttempts(update.intent);
      if (update.statusChanged || latest.status !== update.intent.status) this.#waiters.wake(intentId);
      setTtl(this.#ttlFor(latest.status));
      return { confirmation: storedAnswer(latest), source: 'provider' };
    } finally {
      if (this.#flights.get(intentId) === flight) this.#flights.delete(intentId);
    }
  }

  /**
   * A user who switched methods may still pay the earlier link (Walleot links cannot be canceled):
   * money that moved must unlock the call, so earlier attempts still open are read too, budget
   * permitting. Usually there are none.
   */
  async #readEarlierAttempts(intent: IntentRecord): Promise<IntentRecord> {
    let current = intent;
    for (const attempt of intent.attempts.slice(0, -1)) {
      if (isFinalStatus(attempt.status)) continue;
      const provider = this.#providers.get(attempt.providerId);
      if (provider === undefined) continue;
      const bucket = this.#bucketFor(attempt.providerId, provider);
      if (!bucket.tryTake()) continue;
      try {
        const state = providerStateSchema.parse(await provider.getPayment(attempt.paymentId));
        const update = await applyProviderStateToStore(this.#store, intent.id, attempt.providerId, state, {
          now: this.#now,
          logger: this.#logger,
          telemetry: this.#telemetry,
          onPaid: this.#onPaid,
        });
        if (update !== undefined) current = update.intent;
      } catch (error) {
        this.#logger.warn('status read of an earlier attempt failed', { intentId: intent.id, error });
      }
      if (current.status === 'paid') break;
    }
    return current;
  }

  /**
   * A waiter's poll, up to its place in the queue. Unlike `check`, it queues for the provider's
   * budget (so many waiters take turns) instead of settling for the stored status.
   */
  async #pollPlan(intentId: string, latest: Confirmation | undefined): Promise<PollPlan> {
    const fresh = this.#freshEntry(intentId);
    if (fresh !== undefined) return { answer: fresh.confirmation };
    const intent = latest?.intent ?? (await this.#store.get(intentId));
    if (intent === undefined) return { answer: undefined };
    const target = this.#readTarget(intent);
    if (target === undefined) {
      // Nothing to ask a provider about: the read is a store read.
      const entry = await this.#cache.fetch(intentId, { forceRefresh: true, context: {} });
      return { answer: entry?.confirmation };
    }
    const { attempt, bucket } = target;
    // The budget goes first where a payment is most likely just made: the newest payment, or the
    // one whose payer just accepted its link or opened its page.
    const activeAt = Math.max(attempt.createdAt, this.#activity.get(intentId) ?? 0);
    return { bucket, providerId: attempt.providerId, activeAt };
  }

  /** A waiter's poll once its token is granted: the read spends it, or it goes back. */
  async #pollRead(intentId: string, queued: QueuedRead): Promise<Confirmation | undefined> {
    const context: ReadContext = { token: { providerId: queued.providerId, used: false } };
    try {
      const cached = this.#freshEntry(intentId);
      if (cached !== undefined) return cached.confirmation;
      return (await this.#cache.fetch(intentId, { forceRefresh: true, context }))?.confirmation;
    } finally {
      if (context.token?.used === false) queued.bucket.refund();
    }
  }

  /** The live attempt worth a provider read and its budget, or undefined when only the store can answer. */
  #readTarget(intent: IntentRecord): { attempt: ProviderAttempt; bucket: TokenBucket } | undefined {
    const attempt = intent.attempts.at(-1);
    if (attempt === undefined || isFinalStatus(intent.status) || isFinalStatus(attempt.status))
      return undefined;
    const provider = this.#providers.get(attempt.providerId);
    return provider === undefined
      ? undefined
      : { attempt, bucket: this.#bucketFor(attempt.providerId, provider) };
  }

  /** A cached answer that is still fresh and was not a budget refusal. */
  #freshEntry(intentId: string): CacheEntry | undefined {
    if (this.#closed) return undefined;
    const entry = this.#cache.get(intentId);
    return entry === undefined || entry.source === 'denied' ? undefined : entry;
  }

  /** Whether this process has seen a later version of the intent than `copy` (announced or cached). */
  #newerThan(copy: IntentRecord): boolean {
    const cached = this.#cache.peek(copy.id, { allowStale: true })?.confirmation?.intent.version ?? 0;
    return Math.max(cached, this.#announced.get(copy.id) ?? 0) > copy.version;
  }

  #onStatusChange(change: StatusChange): void {
    if (this.#closed) return;
    if (change.version > (this.#announced.get(change.intentId) ?? 0)) {
      this.#announced.delete(change.intentId);
      this.#announced.set(change.intentId, change.version);
      // Oldest first in a Map: bounded like the cache.
      if (this.#announced.size > CACHE_MAX) {
        const oldest = this.#announced.keys().next().value;
        if (oldest !== undefined) this.#announced.delete(oldest);
      }
    }
    const cached = this.#cache.peek(change.intentId, { allowStale: true });
    const known = Math.max(
      cached?.confirmation?.intent.version ?? 0,
      this.#flights.get(change.intentId)?.wroteVersion ?? 0,
    );
    if (change.version > known) this.#cache.delete(change.intentId);
    this.#waiters.wake(change.intentId);
  }

  #onReadFailure(bucket: TokenBucket, error: ProviderError): void {
    if (error.retryAfterMs !== undefined) bucket.pause(this.#now() + error.retryAfterMs);
    else if (error.code === 'rate_limited') bucket.pause(this.#now() + DEFAULT_RATE_LIMIT_PAUSE_MS);
  }

  #bucketFor(providerId: string, provider: PaymentProvider): TokenBucket {
    return this.#budget.bucket(providerId, provider.capabilities.statusReadsPerMinute);
  }

  #ttlFor(status: PaymentStatus): number {
    return isFinalStatus(status) ? FINAL_TTL_MS : this.#pendingTtlMs;
  }

  async #storeAnswer(intentId: string): Promise<Confirmation | undefined> {
    const intent = await this.#store.get(intentId);
    return intent === undefined ? undefined : storedAnswer(intent);
  }

  #notifyPoll(options: WaitForOptions, confirmation: Confirmation): void {
    try {
      options.onPoll?.(confirmation);
    } catch (error) {
      // A failed progress notification must not end the wait.
      this.#logger.warn('onPoll callback threw', { intentId: confirmation.intent.id, error });
    }
  }
}
