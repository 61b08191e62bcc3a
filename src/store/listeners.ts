import type { Logger } from '../core/logger.js';
import type { StatusChange } from './types.js';

export type StatusListener = (change: StatusChange) => void;

/**
 * The status-change subscribers of one store instance. Each listener gets its own copy of the
 * change, and one that throws (or returns a rejected promise) is logged without stopping the rest.
 */
export class StatusListeners {
  readonly #listeners = new Set<StatusListener>();
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  get size(): number {
    return this.#listeners.size;
  }

  /** Adds a listener; the returned function removes it (calling it again does nothing). */
  add(listener: StatusListener): () => void {
    // Wrapped so the same function subscribed twice is two subscriptions, each removable once.
    const entry: StatusListener = (change) => listener(change);
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  clear(): void {
    this.#listeners.clear();
  }

  dispatch(change: StatusChange): void {
    // A snapshot, so listeners that unsubscribe (or subscribe) while being called do not disturb the loop.
    for (const listener of [...this.#listeners]) {
      try {
        const returned: unknown = listener({ ...change });
        if (isPromiseLike(returned)) {
          returned.then(undefined, (error: unknown) => this.#reportFailure(change, error));
        }
      } catch (error) {
        this.#reportFailure(change, error);
      }
    }
  }

  #reportFailure(change: StatusChange, error: unknown): void {
    this.#logger.warn('status listener failed', { intentId: change.intentId, status: change.status, error });
  }
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function'
  );
}
