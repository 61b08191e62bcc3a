/**
 * The interruption plumbing of one `waitFor` call: a stop (timeout, caller abort, close) and a
 * wake-up (a status change for its intent) that cut short the current sleep or token wait.
 * Every timer and watch is removed by `dispose`.
 */

/** A listener as EventTarget takes them: a function, or an object with `handleEvent`. */
export type AbortListener = (() => void) | { handleEvent(): void };

/** What a token wait listens to: an AbortSignal, or a waiter's own lighter step. */
export interface AbortLike {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: AbortListener, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: AbortListener): void;
}

/**
 * A one-shot abort flag with listeners, for the many waiters a busy server holds at once: an
 * AbortController (an EventTarget, its signal and a DOMException-shaped reason) weighs several
 * times more, and a waiter needs two, renewed on every wake-up.
 */
class Step implements AbortLike {
  aborted = false;
  #listeners: AbortListener[] | undefined;

  addEventListener(_type: 'abort', listener: AbortListener, _options?: { once?: boolean }): void {
    if (this.aborted) return;
    if (this.#listeners === undefined) this.#listeners = [listener];
    else this.#listeners.push(listener);
  }

  removeEventListener(_type: 'abort', listener: AbortListener): void {
    const listeners = this.#listeners;
    if (listeners === undefined) return;
    const index = listeners.indexOf(listener);
    if (index >= 0) listeners.splice(index, 1);
  }

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const listeners = this.#listeners;
    this.#listeners = undefined;
    if (listeners === undefined) return;
    for (const listener of listeners) {
      if (typeof listener === 'function') listener();
      else listener.handleEvent();
    }
  }
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

function stopWaiter(waiter: Waiter): void {
  waiter.stop();
}

export class Waiter implements AbortWatched {
  /** What `untilStopped` resolves with when the waiter stopped first. */
  static readonly STOPPED: unique symbol = Symbol('stopped');
  readonly #stop = new Step();
  /** Aborted by `wake` or `stop`; renewed when the loop takes the wake-up. */
  #step = new Step();
  #woken = false;
  #timeout: NodeJS.Timeout | undefined;
  readonly #callerSignal: AbortSignal | undefined;

  constructor(options: { timeoutMs: number; signal?: AbortSignal | undefined }) {
    this.#callerSignal = options.signal;
    if (options.signal?.aborted) {
      this.stop();
      return;
    }
    if (options.signal !== undefined) abortWatch.add(this);
    this.#timeout = setTimeout(stopWaiter, Math.max(0, options.timeoutMs), this);
    this.#timeout.unref();
  }

  get watchedSignal(): AbortSignal {
    return this.#callerSignal as AbortSignal;
  }

  callerAborted(): void {
    this.stop();
  }

  /** Also true at once when the caller's signal aborted since the watch last looked. */
  get stopped(): boolean {
    if (!this.#stop.aborted && this.#callerSignal?.aborted === true) this.stop();
    return this.#stop.aborted;
  }

  /** Aborts when the current sleep or token wait should end early. */
  get stepSignal(): AbortLike {
    return this.#step;
  }

  /** A status change arrived: end the current step so the loop re-reads the store. */
  wake(): void {
    this.#woken = true;
    this.#step.abort();
  }

  stop(): void {
    this.#stop.abort();
    this.#step.abort();
  }

  /** Whether a wake-up arrived since the last call; starts a fresh step when it did. */
  takeWake(): boolean {
    if (!this.#woken) return false;
    this.#woken = false;
    if (!this.stopped) this.#step = new Step();
    return true;
  }

  /**
   * `work`, or STOPPED as soon as the waiter stops (timeout, abort, close) while `work` still runs:
   * a slow provider read must not hold a caller past its deadline.
   */
  untilStopped<T>(work: Promise<T>): Promise<T | typeof Waiter.STOPPED> {
    const signal = this.#stop;
    if (signal.aborted) {
      work.catch(() => {});
      return Promise.resolve(Waiter.STOPPED);
    }
    return new Promise((resolve, reject) => {
      const onStop = (): void => {
        work.catch(() => {}); // finishes in the background; its result only warms the cache
        resolve(Waiter.STOPPED);
      };
      signal.addEventListener('abort', onStop, { once: true });
      work.then(
        (value) => {
          signal.removeEventListener('abort', onStop);
          resolve(value);
        },
        (error: unknown) => {
          signal.removeEventListener('abort', onStop);
          reject(error);
        },
      );
    });
  }

  /** Resolves after `ms`, or at once when woken or stopped. */
  sleep(ms: number): Promise<void> {
    const signal = this.#step;
    if (signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      signal.addEventListener('abort', done, { once: true });
    });
  }

  dispose(): void {
    if (this.#timeout !== undefined) clearTimeout(this.#timeout);
    this.#timeout = undefined;
    if (this.#callerSignal !== undefined) abortWatch.delete(this);
  }
}

/**
 * Waiters by intent id, so a status change wakes exactly the waiters of that intent. An intent
 * almost always has one: it is kept as is, and only a second one makes a list (a Set per intent
 * cost ~190 B per waiting call).
 */
export class WaiterRegistry {
  readonly #byIntent = new Map<string, Waiter | Waiter[]>();

  add(intentId: string, waiter: Waiter): void {
    const current = this.#byIntent.get(intentId);
    if (current === undefined) this.#byIntent.set(intentId, waiter);
    else if (Array.isArray(current)) current.push(waiter);
    else this.#byIntent.set(intentId, [current, waiter]);
  }

  remove(intentId: string, waiter: Waiter): void {
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
