import { DEFAULT_MAX_LEDGER, MemoryLedger } from './memory-ledger.js';
import type { LedgerEntry, UsageCounter, UsageOutcome, UsageReservation, UsageStore } from './types.js';

export { DEFAULT_MAX_LEDGER };

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
  /** Bounded over all payers too: many payers (sessions are cheap) must not grow it without end. */
  readonly #ledger: MemoryLedger;

  constructor(maxLedgerEntries = DEFAULT_MAX_LEDGER) {
    this.#ledger = new MemoryLedger(maxLedgerEntries);
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
    return this.#ledger.append(entry, retentionMs);
  }

  async listLedger(subject: string, since: number, limit: number): Promise<LedgerEntry[]> {
    return this.#ledger.list(subject, since, limit);
  }

  #used(scope: string, c: UsageCounter, at: number): { used: number; resetsAt: number } {
    if (c.window.kind === 'fixed') {
      const entry = this.#fixed.get(fixedKey(scope, c));
      return { used: entry === undefined || entry.end <= at ? 0 : entry.used, resetsAt: c.window.end };
    }
    const k = `${scope}|${c.key}`;
    const list = this.#rolling.get(k);
    if (list === undefined) return { used: 0, resetsAt: at + c.window.ms };
    if (dropPassed(list, at - c.window.ms)) this.#rolling.delete(k);
    return { used: list.sum, resetsAt: (list.entries[0]?.at ?? at) + c.window.ms };
  }

  #sweepHeld(now: number): void {
    if (this.#held.size < this.#sweepAt) return;
    for (const [k, held] of this.#held) if (held.until <= now) this.#held.delete(k);
    for (const [k, entry] of this.#fixed) if (entry.end <= now) this.#fixed.delete(k);
    // Payers who do not come back would otherwise keep their window's reservations for ever.
    for (const [k, list] of this.#rolling) if (dropPassed(list, now - list.ms)) this.#rolling.delete(k);
    this.#sweepAt = Math.max(1024, this.#held.size * 2);
  }
}

/** Drop a rolling list's reservations made at or before `from`; true when none is left. */
function dropPassed(
  list: { entries: Array<{ at: number; add: number }>; sum: number },
  from: number,
): boolean {
  let drop = 0;
  while (drop < list.entries.length && list.entries[drop]!.at <= from) list.sum -= list.entries[drop++]!.add;
  if (drop > 0) list.entries.splice(0, drop);
  return list.entries.length === 0;
}

function fixedKey(scope: string, c: UsageCounter): string {
  return `${scope}|${c.key}|${c.window.kind === 'fixed' ? c.window.start : 0}`;
}
