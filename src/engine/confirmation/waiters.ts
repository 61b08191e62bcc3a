import type { IntentRecord } from '../../core/intent/record.js';
import { isFinalStatus } from '../../core/intent/status.js';
import type { Confirmation, WaitForOptions } from './confirmation-layer.js';
import type { TokenBucket } from './rate-budget.js';

/**
 * One `waitFor` call as a small record driven by timers and callbacks: a stop (deadline, caller
 * abort, close), a wake-up (a status change for its intent), a poll loop with back-off. Between
 * steps nothing is suspended: a waiting call holds this object and either its sleep timer or its
 * place in the read budget's queue, instead of a chain of async frames, promises and closures.
 */

/** A listener as EventTarget takes them: a function, or an object with `handleEvent`. */
export type AbortListener = (() => void) | { handleEvent(): void };

/** What a token wait listens to: an AbortSignal, or a waiter's current step. */
export interface AbortLike {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: AbortListener, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: AbortListener): void;
}

/** Something told once when its caller's signal aborts (see `abortWatch`). */
export interface AbortWatched {
  readonly watchedSignal: AbortSignal;
  callerAborted(): void;
}

/** How often watched signals are looked at: the longest a wait or a question outlives its caller. */
export const ABORT_CHECK_MS = 250;

/**
 * Notices aborted call signals by looking at them instead of listening: the first listener on an
 * AbortSignal makes Node build its event tables (about 0.8 KB, kept after the listener is
 * removed), and a call waiting minutes for its payment would hold them. One timer looks at every
 * watched signal, and only while something is watched.
 */
class AbortWatch {
  readonly #watched = new Set<AbortWatched>();
  #timer: NodeJS.Timeout | undefined;

  add(entry: AbortWatched): void {
    this.#watched.add(entry);
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#check(), ABORT_CHECK_MS);
      this.#timer.unref();
    }
  }

  delete(entry: AbortWatched): void {
    this.#watched.delete(entry);
    if (this.#watched.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #check(): void {
    for (const entry of this.#watched) {
      if (!entry.watchedSignal.aborted) continue;
      this.delete(entry);
      entry.callerAborted();
    }
  }
}

export const abortWatch = new AbortWatch();

/** A waiter's poll: an answer that needs no provider read, or the budget to queue for first. */
export type PollPlan = { answer: Confirmation | undefined } | QueuedRead;

export interface QueuedRead {
  bucket: TokenBucket;
  providerId: string;
  /** When the payment last saw activity (the budget serves the most recent first). */
  activeAt: number;
}

/** What the confirmation layer does for its waiters. */
export interface WaitHost {
  readonly poll: { initialMs: number; factor: number; maxMs: number; jitter: number };
  /** First poll delay for a payment whose outcome is pushed to us (undefined: poll at once). */
  pushedDelay(start: IntentRecord | undefined, timeoutMs: number): number | undefined;
  get(intentId: string): Promise<IntentRecord | undefined>;
  storeAnswer(intentId: string): Promise<Confirmation | undefined>;
  plan(intentId: string, latest: Confirmation | undefined): Promise<PollPlan>;
  /** The provider read, with the token the waiter was granted. */
  read(intentId: string, queued: QueuedRead): Promise<Confirmation | undefined>;
  notify(options: WaitForOptions, answer: Confirmation): void;
  done(intentId: string, run: WaitRun): void;
}

/** Told by the registry. */
export interface Wakeable {
  wake(): void;
  stop(): void;
}

function stopRun(run: WaitRun): void {
  run.stop();
}

function resumeRun(run: WaitRun): void {
  run.resume();
}

export class WaitRun implements Wakeable, AbortWatched, AbortLike {
  #latest: Confirmation | undefined;
  #delay: number;
  #stopped = false;
  #woken = false;
  /** The current step (a sleep, a queued token wait) should end early: woken or stopped. */
  #stepAborted = false;
  #settled = false;
  /** Counts reads started: a read that finishes after the waiter moved on is dropped. */
  #readSeq = 0;
  #reading = false;
  #deadline: NodeJS.Timeout | undefined;
  #sleep: NodeJS.Timeout | undefined;
  /** The queued token wait listening on this step: one at a time. */
  #listener: AbortListener | undefined;

  constructor(
    private readonly host: WaitHost,
    readonly intentId: string,
    private readonly options: WaitForOptions,
    private readonly resolve: (answer: Confirmation | undefined) => void,
    private readonly reject: (error: unknown) => void,
  ) {
    this.#delay = host.poll.initialMs;
  }

  /** Starts the wait; `closed`: the layer is closed, so it ends with the stored state at once. */
  start(closed: boolean): void {
    const { signal, timeoutMs } = this.options;
    if (closed || signal?.aborted === true) this.stop();
    else {
      if (signal !== undefined) abortWatch.add(this);
      this.#deadline = setTimeout(stopRun, Math.max(0, timeoutMs), this);
      this.#deadline.unref();
    }
    // Registered before this read (by the caller), so a change landing after it wakes the wait.
    this.#track(this.host.get(this.intentId), (start) => this.#begin(start));
  }

  get watchedSignal(): AbortSignal {
    return this.options.signal as AbortSignal;
  }

  callerAborted(): void {
    this.stop();
  }

  get aborted(): boolean {
    return this.#stepAborted;
  }

  addEventListener(_type: 'abort', listener: AbortListener): void {
    if (!this.#stepAborted) this.#listener = listener;
  }

  removeEventListener(_type: 'abort', listener: AbortListener): void {
    if (this.#listener === listener) this.#listener = undefined;
  }

  /** A status change arrived: end the current step so the loop re-reads the store. */
  wake(): void {
    this.#woken = true;
    this.#abortStep();
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#abortStep();
    // A slow read must not hold the caller past its deadline: it finishes in the background.
    if (this.#reading && !this.#settled) {
      this.#reading = false;
      this.#readSeq += 1;
      this.resume();
    }
  }

  /** The sleep is over (or was cut short): the next step. */
  resume(): void {
    if (this.#sleep !== undefined) clearTimeout(this.#sleep);
    this.#sleep = undefined;
    if (this.#settled) return;
    // The caller's abort is looked at on every step too, not only when the watch comes by.
    if (!this.#stopped && this.options.signal?.aborted === true) this.stop();
    if (this.#settled) return;
    if (this.#stopped) {
      const latest = this.#latest;
      if (latest !== undefined) this.#finish(latest);
      else this.#track(this.host.storeAnswer(this.intentId), (answer) => this.#finish(answer));
      return;
    }
    const woken = this.#woken;
    if (woken) {
      this.#woken = false;
      this.#stepAborted = false;
      // After a notification the store already has the news: no provider read is needed.
      this.#track(this.host.storeAnswer(this.intentId), (answer) => this.#answered(answer, true));
      return;
    }
    this.#track(this.host.plan(this.intentId, this.#latest), (plan) => {
      if ('answer' in plan) return this.#answered(plan.answer, false);
      if (this.#stopped || this.#stepAborted) return this.resume();
      plan.bucket.acquire(this, { activeAt: plan.activeAt }).then(
        (granted) => {
          if (this.#settled) {
            if (granted) plan.bucket.refund();
            return;
          }
          if (!granted) return this.resume();
          // Stopped just as the token came: nobody waits for the read any more.
          if (this.#stopped) {
            plan.bucket.refund();
            return this.resume();
          }
          this.#track(this.host.read(this.intentId, plan), (answer) => this.#answered(answer, false));
        },
        (error: unknown) => this.#fail(error),
      );
    });
  }

  #begin(start: IntentRecord | undefined): void {
    if (start !== undefined && isFinalStatus(start.status)) {
      this.#finish({ intent: start, status: start.status });
      return;
    }
    const pushed = this.host.pushedDelay(start, this.options.timeoutMs);
    if (pushed === undefined) this.resume();
    else {
      // The webhook or return page will tell us: the first read would only find "pending".
      this.#delay = Math.max(this.#delay, pushed);
      this.#sleepFor(this.#delay);
    }
  }

  #answered(answer: Confirmation | undefined, woken: boolean): void {
    if (answer === undefined) {
      this.#finish(undefined);
      return;
    }
    this.#latest = answer;
    this.host.notify(this.options, answer);
    if (isFinalStatus(answer.status) || this.options.until?.(answer) === true) {
      this.#finish(answer);
      return;
    }
    const poll = this.host.poll;
    if (woken) this.#delay = poll.initialMs;
    const delay = this.#delay;
    this.#delay = Math.min(delay * poll.factor, poll.maxMs);
    // Jittered, so waiters started together do not poll in lockstep.
    this.#sleepFor(poll.jitter === 0 ? delay : delay * (1 - poll.jitter + 2 * poll.jitter * Math.random()));
  }

  #sleepFor(ms: number): void {
    if (this.#stepAborted || this.#stopped) {
      this.resume();
      return;
    }
    this.#sleep = setTimeout(resumeRun, ms, this);
    this.#sleep.unref();
  }

  #abortStep(): void {
    if (this.#stepAborted) return;
    this.#stepAborted = true;
    const listener = this.#listener;
    this.#listener = undefined;
    if (listener !== undefined) {
      if (typeof listener === 'function') listener();
      else listener.handleEvent();
    }
    if (this.#sleep !== undefined) this.resume();
  }

  /**
   * Runs `then` with what `work` gives, unless the waiter moved on first (stopped: the read then
   * finishes in the background, its result or failure dropped); a failure ends the wait.
   */
  #track<T>(work: Promise<T>, then: (value: T) => void): void {
    const seq = ++this.#readSeq;
    this.#reading = true;
    work.then(
      (value) => {
        if (seq !== this.#readSeq || this.#settled) return;
        this.#reading = false;
        try {
          then(value);
        } catch (error) {
          this.#fail(error);
        }
      },
      (error: unknown) => {
        if (seq !== this.#readSeq || this.#settled) return;
        this.#reading = false;
        this.#fail(error);
      },
    );
  }

  #dispose(): void {
    this.#settled = true;
    if (this.#deadline !== undefined) clearTimeout(this.#deadline);
    if (this.#sleep !== undefined) clearTimeout(this.#sleep);
    this.#deadline = undefined;
    this.#sleep = undefined;
    if (this.options.signal !== undefined) abortWatch.delete(this);
    this.host.done(this.intentId, this);
  }

  #finish(answer: Confirmation | undefined): void {
    if (this.#settled) return;
    this.#dispose();
    this.resolve(answer);
  }

  #fail(error: unknown): void {
    if (this.#settled) return;
    this.#dispose();
    this.reject(error);
  }
}

/**
 * Waiters by intent id, so a status change wakes exactly the waiters of that intent. An intent
 * almost always has one: it is kept as is, and only a second one makes a list (a Set per intent
 * cost ~190 B per waiting call).
 */
export class WaiterRegistry {
  readonly #byIntent = new Map<string, Wakeable | Wakeable[]>();

  add(intentId: string, waiter: Wakeable): void {
    const current = this.#byIntent.get(intentId);
    if (current === undefined) this.#byIntent.set(intentId, waiter);
    else if (Array.isArray(current)) current.push(waiter);
    else this.#byIntent.set(intentId, [current, waiter]);
  }

  remove(intentId: string, waiter: Wakeable): void {
    const current = this.#byIntent.get(intentId);
    if (current === waiter) {
      this.#byIntent.delete(intentId);
    } else if (Array.isArray(current)) {
      const index = current.indexOf(waiter);
      if (index >= 0) current.splice(index, 1);
      if (current.length === 1) this.#byIntent.set(intentId, current[0]!);
      else if (current.length === 0) this.#byIntent.delete(intentId);
    }
  }

  wake(intentId: string): void {
    const current = this.#byIntent.get(intentId);
    if (current === undefined) return;
    if (!Array.isArray(current)) current.wake();
    else for (const waiter of [...current]) waiter.wake();
  }

  stopAll(): void {
    for (const current of [...this.#byIntent.values()]) {
      if (!Array.isArray(current)) current.stop();
      else for (const waiter of [...current]) waiter.stop();
    }
  }

  get size(): number {
    let total = 0;
    for (const current of this.#byIntent.values()) total += Array.isArray(current) ? current.length : 1;
    return total;
  }
}
