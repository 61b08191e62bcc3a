import type { LedgerEntry } from './types.js';

/** Entries one payer keeps in a memory store's ledger at most (oldest dropped first). */
const PER_PAYER = 10_000;
/** Entries a memory store's ledger keeps over all payers, by default (oldest dropped first). */
export const DEFAULT_MAX_LEDGER = 100_000;

/**
 * One payer's entries and when each may go, oldest first from `head` (dropping from the front is
 * O(1); the arrays are compacted now and then). `dropped` counts every entry ever dropped from
 * its front, so an entry's place in the payer's whole history tells whether it is still kept.
 */
interface PayerEntries {
  readonly subject: string;
  entries: LedgerEntry[];
  untils: number[];
  head: number;
  dropped: number;
}

/**
 * The ledger of a memory store: per payer in write order, each payer's newest `PER_PAYER` kept,
 * at most `max` over all payers (the oldest entry of any payer going first), each for its
 * retention. An append is a few array pushes and one map write: no per-entry side tables.
 */
export class MemoryLedger {
  readonly #max: number;
  readonly #payers = new Map<string, PayerEntries>();
  /** Entry id -> until when a repeat of it is refused (each entry is written once). */
  readonly #ids = new Map<string, number>();
  /** Every entry appended, in write order over all payers, as its payer and its place in that payer's history. */
  #orderPayers: Array<PayerEntries | undefined> = [];
  #orderPlaces: number[] = [];
  #orderHead = 0;
  #size = 0;

  constructor(max = DEFAULT_MAX_LEDGER) {
    this.#max = max;
  }

  append(entry: LedgerEntry, retentionMs: number): boolean {
    const now = Date.now();
    let payer = this.#payers.get(entry.subject);
    if (payer !== undefined && this.#prune(payer, now)) payer = undefined;
    const known = this.#ids.get(entry.id);
    if (known !== undefined && known > now) return false;
    if (payer === undefined) {
      payer = { subject: entry.subject, entries: [], untils: [], head: 0, dropped: 0 };
      this.#payers.set(entry.subject, payer);
    }
    // The engine hands over a frozen entry; anything else is copied so the caller cannot change it.
    const kept = Object.isFrozen(entry) ? entry : Object.freeze({ ...entry });
    const until = now + retentionMs;
    this.#orderPayers.push(payer);
    this.#orderPlaces.push(payer.dropped + payer.entries.length - payer.head);
    payer.entries.push(kept);
    payer.untils.push(until);
    this.#ids.set(kept.id, until);
    this.#size += 1;
    while (payer.entries.length - payer.head > PER_PAYER) this.#dropOldest(payer);
    compact(payer);
    // Over the bound: the oldest entry of all, unless its payer's own cap or retention dropped it already.
    while (this.#size > this.#max) {
      const owner = this.#orderPayers[this.#orderHead];
      const place = this.#orderPlaces[this.#orderHead]!;
      this.#orderPayers[this.#orderHead++] = undefined;
      if (owner !== undefined && place === owner.dropped && owner.head < owner.entries.length) {
        this.#dropOldest(owner);
        this.#tidy(owner);
      }
    }
    this.#compactOrder();
    return true;
  }

  /** A payer's entries written at or after `since`, oldest first, at most `limit`. */
  list(subject: string, since: number, limit: number): LedgerEntry[] {
    const out: LedgerEntry[] = [];
    const payer = this.#payers.get(subject);
    if (payer === undefined || this.#prune(payer, Date.now())) return out;
    for (let i = payer.head; i < payer.entries.length && out.length < limit; i++) {
      const e = payer.entries[i]!;
      if (e.at >= since) out.push(e);
    }
    return out;
  }

  /** Drop the payer's entries past their retention; true when none is left (the payer is forgotten). */
  #prune(payer: PayerEntries, now: number): boolean {
    while (payer.head < payer.entries.length && payer.untils[payer.head]! <= now) this.#dropOldest(payer);
    return this.#tidy(payer);
  }

  /** A payer's entries after drops from their front: forgotten when empty, else compacted when mostly dead. */
  #tidy(payer: PayerEntries): boolean {
    if (payer.head < payer.entries.length) {
      compact(payer);
      return false;
    }
    if (this.#payers.get(payer.subject) === payer) this.#payers.delete(payer.subject);
    return true;
  }

  #dropOldest(payer: PayerEntries): void {
    const dropped = payer.entries[payer.head]!;
    payer.entries[payer.head] = undefined as unknown as LedgerEntry;
    payer.head += 1;
    payer.dropped += 1;
    this.#ids.delete(dropped.id);
    this.#size -= 1;
  }

  /**
   * The write order keeps a place for entries a payer's own cap or retention dropped, and its
   * front for those the bound dropped: once either is most of it, keep only the live places
   * (amortised O(1) per entry).
   */
  #compactOrder(): void {
    const length = this.#orderPayers.length;
    const pending = length - this.#orderHead;
    if (pending <= 2 * this.#size + 1024 && (this.#orderHead < 1024 || this.#orderHead * 2 < length)) return;
    const payers: PayerEntries[] = [];
    const places: number[] = [];
    for (let i = this.#orderHead; i < length; i++) {
      const payer = this.#orderPayers[i];
      const place = this.#orderPlaces[i]!;
      if (payer !== undefined && place >= payer.dropped) {
        payers.push(payer);
        places.push(place);
      }
    }
    this.#orderPayers = payers;
    this.#orderPlaces = places;
    this.#orderHead = 0;
  }
}

/**
 * Drop the dead front of a payer's arrays once it is most of them (amortised O(1) per entry): at
 * the bound, each of many payers keeps a few entries while its front keeps moving.
 */
function compact(payer: PayerEntries): void {
  if (payer.head < 16 || payer.head * 2 < payer.entries.length) return;
  payer.entries = payer.entries.slice(payer.head);
  payer.untils = payer.untils.slice(payer.head);
  payer.head = 0;
}
