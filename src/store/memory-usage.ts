import type { LedgerEntry, UsageCounter, UsageOutcome, UsageReservation, UsageStore } from './types.js';

/** Entries one subject keeps in a memory store's ledger at most (oldest dropped first). */
const LEDGER_PER_SUBJECT = 10_000;
/** Entries a memory store's ledger keeps over all subjects, by default (oldest dropped first). */
export const DEFAULT_MAX_LEDGER = 100_000;

interface Held {
  counters: readonly UsageCounter[];
  at: number;
  /** When giving it back can no longer change any counter. */
  until: number;
}

/**
 * Usage counters and the ledger of a memory store, in one process: no await between a check and
 * its write, so a reservation is atomic. Counters end with their period; nothing runs on a timer.
 */
export class MemoryUsage implements UsageStore {
  /** Entries kept over all payers at most: many payers (sessions are cheap) must not grow it without end. */
  readonly #maxLedger: number;
  /** Every kept entry in the order written, over all payers (dropped ones left as holes until compacted). */
  #order: { entries: LedgerEntry[]; head: number } = { entries: [], head: 0 };
  #ledgerSize = 0;

  constructor(maxLedgerEntries = DEFAULT_MAX_LEDGER) {
    this.#maxLedger = maxLedgerEntries;
  }

  /** `<scope>|<key>|<period start>` -> used, and when the period ends. */
  readonly #fixed = new Map<string, { used: number; end: number }>();
  /** `<scope>|<key>` -> reservations in the rolling window, oldest first, and their sum. */
  readonly #rolling = new Map<
    string,
    { entries: Array<{ id: string; at: number; add: number }>; sum: number; ms: number }
  >();
  /** Sweep ended reservations once this many are held (doubling), so a reserve stays O(counters). */
  #sweepAt = 1024;
  /** `<scope>|<id>` -> what a reservation added, until it can be given back no more. */
  readonly #held = new Map<string, Held>();
  /** Per subject, oldest first from `head` (dropping from the front is O(1); the array is compacted now and then). */
  readonly #ledger = new Map<string, { entries: LedgerEntry[]; head: number }>();
  readonly #ledgerIds = new Map<string, number>();

  async reserveUsage(r: UsageReservation): Promise<UsageOutcome> {
    const heldKey = `${r.scope}|${r.id}`;
    this.#sweepHeld(r.at);
    if (this.#held.has(heldKey)) return { kind: 'reserved' };
    for (const c of r.counters) {
      const { used, resetsAt } = this.#used(r.scope, c, r.at);
      if (used + c.add > c.limit) return { kind: 'over', key: c.key, used, limit: c.limit, resetsAt };
    }
    let until = r.at;
    for (const c of r.counters) {
      if (c.window.kind === 'fixed') {
        const k = fixedKey(r.scope, c);
        const entry = this.#fixed.get(k);
        this.#fixed.set(k, { used: (entry?.used ?? 0) + c.add, end: c.window.end });
        until = Math.max(until, c.window.end);
      } else {
        const k = `${r.scope}|${c.key}`;
        let list = this.#rolling.get(k);
        if (list === undefined) {
          list = { entries: [], sum: 0, ms: c.window.ms };
          this.#rolling.set(k, list);
        } else if (c.window.ms > list.ms) list.ms = c.window.ms;
        list.entries.push({ id: r.id, at: r.at, add: c.add });
        list.sum += c.add;
        until = Math.max(until, r.at + c.window.ms);
      }
    }
    this.#held.set(heldKey, { counters: r.counters, at: r.at, until });
    return { kind: 'reserved' };
  }

  async releaseUsage(scope: string, id: string): Promise<boolean> {
    const heldKey = `${scope}|${id}`;
    const held = this.#held.get(heldKey);
    if (held === undefined) return false;
    this.#held.delete(heldKey);
    for (const c of held.counters) {
      if (c.window.kind === 'fixed') {
        const k = fixedKey(scope, c);
        const entry = this.#fixed.get(k);
        if (entry !== undefined) entry.used = Math.max(0, entry.used - c.add);
      } else {
        const list = this.#rolling.get(`${scope}|${c.key}`);
        const index = list?.entries.findIndex((e) => e.id === id) ?? -1;
        if (list !== undefined && index >= 0) {
          list.sum -= list.entries[index]!.add;
          list.entries.splice(index, 1);
        }
      }
    }
    return true;
  }

  async appendLedger(entry: LedgerEntry, retentionMs: number): Promise<boolean> {
    const now = Date.now();
    this.#pruneLedger(entry.subject, now);
    const known = this.#ledgerIds.get(entry.id);
    if (known !== undefined && known > now) return false;
    let list = this.#ledger.get(entry.subject);
    if (list === undefined) {
      list = { entries: [], head: 0 };
      this.#ledger.set(entry.subject, list);
    }
    // The engine hands over a frozen entry; anything else is copied so the caller cannot change it.
    const kept = Object.isFrozen(entry) ? entry : Object.freeze({ ...entry });
    list.entries.push(kept);
    expiries.set(kept, now + retentionMs);
    this.#ledgerIds.set(entry.id, now + retentionMs);
    this.#order.entries.push(kept);
    this.#ledgerSize += 1;
    while (list.entries.length - list.head > LEDGER_PER_SUBJECT) this.#dropOldest(list);
    compact(list);
    // Over the bound: the oldest entry of all. Each payer's list is in write order, so it is the
    // head of its own payer's list, unless that payer's cap or retention dropped it already.
    while (this.#ledgerSize > this.#maxLedger) {
      const order = this.#order;
      const oldest = order.entries[order.head];
      order.entries[order.head++] = undefined as unknown as LedgerEntry;
      if (oldest === undefined) continue;
      const owner = this.#ledger.get(oldest.subject);
      if (owner !== undefined && owner.entries[owner.head] === oldest) {
        this.#dropOldest(owner);
        this.#tidy(oldest.subject, owner);
      }
    }
    this.#compactOrder();
    return true;
  }

  async listLedger(subject: string, since: number, limit: number): Promise<LedgerEntry[]> {
    this.#pruneLedger(subject, Date.now());
    const list = this.#ledger.get(subject);
    const out: LedgerEntry[] = [];
    if (list === undefined) return out;
    for (let i = list.head; i < list.entries.length && out.length < limit; i++) {
      const e = list.entries[i]!;
      if (e.at >= since) out.push(e);
    }
    return out;
  }

  #pruneLedger(subject: string, now: number): void {
    const list = this.#ledger.get(subject);
    if (list === undefined) return;
    while (list.head < list.entries.length && (expiries.get(list.entries[list.head]!) ?? 0) <= now)
      this.#dropOldest(list);
    this.#tidy(subject, list);
  }

  /** A payer's list after drops from its front: gone when empty, else compacted when mostly dead. */
  #tidy(subject: string, list: { entries: LedgerEntry[]; head: number }): void {
    if (list.head === list.entries.length) this.#ledger.delete(subject);
    else compact(list);
  }

  /**
   * The write order still holds entries a payer's own cap or retention dropped: once it is twice
   * the entries kept, keep only the live ones (amortised O(1) per entry).
   */
  #compactOrder(): void {
    const order = this.#order;
    if (order.entries.length - order.head <= 2 * this.#ledgerSize + 1024) return;
    const live: LedgerEntry[] = [];
    for (let i = order.head; i < order.entries.length; i++) {
      const e = order.entries[i];
      if (e !== undefined && expiries.has(e)) live.push(e);
    }
    this.#order = { entries: live, head: 0 };
  }

  #dropOldest(list: { entries: LedgerEntry[]; head: number }): void {
    const dropped = list.entries[list.head];
    list.entries[list.head++] = undefined as unknown as LedgerEntry;
    if (dropped === undefined) return;
    this.#ledgerIds.delete(dropped.id);
    expiries.delete(dropped);
    this.#ledgerSize -= 1;
  }

  #used(scope: string, c: UsageCounter, at: number): { used: number; resetsAt: number } {
    if (c.window.kind === 'fixed') {
      const entry = this.#fixed.get(fixedKey(scope, c));
      return { used: entry === undefined || entry.end <= at ? 0 : entry.used, resetsAt: c.window.end };
    }
    const k = `${scope}|${c.key}`;
    const list = this.#rolling.get(k);
    if (list === undefined) return { used: 0, resetsAt: at + c.window.ms };
    const from = at - c.window.ms;
    let drop = 0;
    while (drop < list.entries.length && list.entries[drop]!.at <= from)
      list.sum -= list.entries[drop++]!.add;
    if (drop > 0) list.entries.splice(0, drop);
    if (list.entries.length === 0) this.#rolling.delete(k);
    return { used: list.sum, resetsAt: (list.entries[0]?.at ?? at) + c.window.ms };
  }

  #sweepHeld(now: number): void {
    if (this.#held.size < this.#sweepAt) return;
    for (const [k, held] of this.#held) if (held.until <= now) this.#held.delete(k);
    for (const [k, entry] of this.#fixed) if (entry.end <= now) this.#fixed.delete(k);
    // Payers who do not come back would otherwise keep their window's reservations for ever.
    for (const [k, list] of this.#rolling) {
      const from = now - list.ms;
      let drop = 0;
      while (drop < list.entries.length && list.entries[drop]!.at <= from)
        list.sum -= list.entries[drop++]!.add;
      if (drop === list.entries.length) this.#rolling.delete(k);
      else if (drop > 0) list.entries.splice(0, drop);
    }
    this.#sweepAt = Math.max(1024, this.#held.size * 2);
  }
}

/** Drop the dead front of a subject's entries once it is most of the array (amortised O(1) per entry). */
function compact(list: { entries: LedgerEntry[]; head: number }): void {
  if (list.head < 1024 || list.head * 2 < list.entries.length) return;
  list.entries = list.entries.slice(list.head);
  list.head = 0;
}

/** When each ledger entry may be dropped (kept off the frozen entry itself). */
const expiries = new WeakMap<LedgerEntry, number>();

function fixedKey(scope: string, c: UsageCounter): string {
  return `${scope}|${c.key}|${c.window.kind === 'fixed' ? c.window.start : 0}`;
}
