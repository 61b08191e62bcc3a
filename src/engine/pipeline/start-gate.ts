/**
 * Taken when this module loads: a test that fakes timers afterwards (vitest's and Jest's fake
 * setImmediate too by default) must not leave a burst's queued calls waiting for a turn that never comes.
 */
const nextTurn: (callback: () => void) => unknown = globalThis.setImmediate.bind(globalThis);

/**
 * Keeps a burst of paid calls from holding the event loop. Calls that arrive together (thousands
 * in one batch of I/O, or one InMemory tick) would otherwise each run their whole start — price,
 * open, route, provider request, link delivery — in one unbroken stretch of microtasks, so timers,
 * webhooks and every other request wait for all of them. Past a few milliseconds of starts in one
 * turn of the event loop, further calls wait for a later turn, a few per turn, in arrival order.
 *
 * A call alone, or calls one after another, never wait: the gate only closes while more calls are
 * in progress than `burst` and the current turn has already let through its count of starts (the
 * burst size at first, then adapted to the last turn's time) or spent `sliceMs`.
 */
export class StartGate {
  /** Calls between enter() and leave(). */
  #inProgress = 0;
  /** When the current turn began letting starts through, or undefined between turns. */
  #turnStarted: number | undefined;
  /** Starts let through in the current turn. */
  #admitted = 0;
  /** Starts one turn may let through: adapted so that a turn's starts take about sliceMs. */
  #perTurn: number;
  readonly #queue: Array<() => void> = [];
  #turnScheduled = false;
  readonly #sliceMs: number;
  readonly #burst: number;
  readonly #now: () => number;

  constructor(options: { sliceMs?: number; burst?: number; now?: () => number } = {}) {
    this.#sliceMs = options.sliceMs ?? 5;
    this.#burst = options.burst ?? 32;
    this.#perTurn = Math.max(1, this.#burst);
    this.#now = options.now ?? (() => performance.now());
  }

  /** undefined: go on now. A promise: go on when it resolves. Every enter() is paired with one leave(). */
  enter(): Promise<void> | undefined {
    this.#inProgress += 1;
    if (this.#queue.length === 0) {
      if (this.#inProgress <= this.#burst) return undefined;
      const now = this.#now();
      if (this.#turnStarted === undefined) this.#beginTurn(now, 0);
      // Counted, not only timed: the starts let through now do their work later in this same turn.
      if (this.#admitted < this.#perTurn && now - (this.#turnStarted ?? now) < this.#sliceMs) {
        this.#admitted += 1;
        return undefined;
      }
    }
    return new Promise<void>((resolve) => {
      this.#queue.push(resolve);
      this.#scheduleTurn();
    });
  }

  leave(): void {
    this.#inProgress -= 1;
  }

  /** Calls waiting for a later turn. */
  get waiting(): number {
    return this.#queue.length;
  }

  #beginTurn(now: number, admitted: number): void {
    this.#turnStarted = now;
    this.#admitted = admitted;
    this.#scheduleTurn();
  }

  #scheduleTurn(): void {
    if (this.#turnScheduled) return;
    this.#turnScheduled = true;
    // An immediate runs after this turn's I/O and microtasks, before the next turn's timers. Not
    // unref'd: queued calls may be all that is left to do (an InMemory transport holds no handle).
    nextTurn(() => this.#nextTurn());
  }

  #nextTurn(): void {
    this.#turnScheduled = false;
    const now = this.#now();
    const last = this.#turnStarted;
    this.#turnStarted = undefined;
    if (this.#queue.length === 0) return;
    // The last turn's starts (and whatever else ran with them) took now - last: aim at sliceMs.
    if (last !== undefined && this.#admitted > 0) {
      const took = Math.max(0.01, now - last);
      this.#perTurn = Math.min(256, Math.max(1, Math.floor((this.#admitted * this.#sliceMs) / took)));
    }
    const released = this.#queue.splice(0, this.#perTurn);
    this.#beginTurn(now, released.length);
    for (const release of released) release();
  }
}
