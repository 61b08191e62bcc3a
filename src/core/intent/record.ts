import type { Money } from '../money/money.js';
import type { PaymentAction } from '../provider.js';
import type { PaymentStatus } from './status.js';

/** A tool's result as the engine keeps it: the MCP CallToolResult, as plain JSON. */
export type ToolResult = { content?: readonly unknown[]; isError?: boolean; [key: string]: unknown };

/** What a payment is for. A payment unlocks a tool call only when every field matches. */
export interface Binding {
  tool: string;
  /** sha256 of the canonical JSON of the validated arguments. */
  argsHash: string;
  /** Minor units. */
  amount: number;
  currency: string;
  subject: string;
}

/** One provider payment made for an intent. An intent has at most one live attempt at a time. */
export interface ProviderAttempt {
  providerId: string;
  paymentId: string;
  url: string;
  status: PaymentStatus;
  rawStatus: string;
  idempotencyKey: string;
  createdAt: number;
  /** Provider-side expiry, ms since epoch. */
  expiresAt?: number;
  /**
   * What the payer does to pay it, when it is not a link (`url` is then ''): an invoice, or the
   * requirements a machine credential must meet.
   */
  action?: PaymentAction;
  /** For a machine credential: its settlement after the run, at most once per attempt. */
  settlement?: AttemptSettlement;
}

/**
 * The settlement of a verified machine credential. `settling` is taken with compare-and-set
 * before the facilitator is asked, so no two callers settle one credential; `settled` keeps the
 * receipt handed to the client; `failed` says why (the result stays withheld).
 */
export interface AttemptSettlement {
  state: 'settling' | 'settled' | 'failed';
  at: number;
  /** The provider's receipt as JSON (x402: the SettleResponse). */
  receipt?: Record<string, unknown>;
  reason?: string;
}

export interface PlannedAttempt {
  providerId: string;
  idempotencyKey: string;
  /** Provider-side expiry to request, ms since epoch. */
  expiresAt: number;
  plannedAt: number;
  /** Where the provider sends the payer afterwards, fixed with the plan so every retry sends the same request. */
  returnUrls?: { success: string; cancel: string };
}

/**
 * Whether the bound tool has run. `running`: a runner holds the store's run lease (taken and
 * timed on the store's clock, so a crashed instance does not block forever). `refunding`: the
 * run failed and a refund was chosen in the same write, so no run can be claimed any more;
 * `refunded` once the provider returned the money.
 */
export type RunState = 'unused' | 'running' | 'done' | 'refunding' | 'refunded';

/** Who runs the tool now. The lease's expiry lives in the store, on the store's clock. */
export interface RunLease {
  owner: string;
  /** Monotonic fencing token: a stale owner's completion is rejected. */
  fence: number;
  /**
   * Written by versions before 0.2, on the writing instance's clock; read only to keep such a run
   * from being taken over during an upgrade. New leases have no `until`.
   */
  until?: number;
}

/** The result of the bound tool, stored so a retry gets it again instead of a second run. */
export interface StoredResult {
  /** The CallToolResult as JSON. */
  result: Record<string, unknown>;
  completedAt: number;
}

/**
 * A payment intent: one priced tool call, its payment attempts and its run.
 * Stored as plain JSON; `version` increases on every write (compare-and-set).
 */
export interface IntentRecord {
  id: string;
  version: number;
  binding: Binding;
  /** Canonical JSON of the validated arguments, so `confirm_payment` can run the call later. */
  argsJson: string;
  description: string;
  status: PaymentStatus;
  /** Provider ids that could take this charge, in routing order. */
  eligible: string[];
  attempts: ProviderAttempt[];
  /**
   * A provider payment being created: its parameters are fixed before the request, so a retry
   * after a timeout or crash sends the same idempotency key and the same parameters.
   */
  plannedAttempt?: PlannedAttempt;
  run: RunState;
  lease?: RunLease;
  /** Highest fencing token handed out. */
  fence: number;
  result?: StoredResult;
  /** Whether the stored result reached a caller; an undelivered one (client dropped mid-call) is handed to the next identical call. */
  resultDelivered?: boolean;
  /** Failed handler runs, newest last (message only). The payment stays usable for a retry. */
  runErrors: string[];
  /** A call of the free allowance: `paid` without any provider, for nothing (the ledger records 0). */
  free?: true;
  createdAt: number;
  updatedAt: number;
  /** When the record may be deleted (ms since epoch): provider expiry while open, result retention after. */
  expiresAt: number;
}

/** Bindings of stored (frozen) records keep their key: computed once per binding, not per use. */
const bindingKeys = new WeakMap<Binding, string>();

/** Key for "the open intent of this subject for this exact call". */
export function bindingKey(b: Binding): string {
  const known = bindingKeys.get(b);
  if (known !== undefined) return known;
  const key = [b.subject, b.tool, b.argsHash, b.amount, b.currency].map(encodeURIComponent).join('|');
  // Only a frozen binding can be remembered: a mutable one could change under its key.
  if (Object.isFrozen(b)) bindingKeys.set(b, key);
  return key;
}

/** Statuses in which an intent waits to be paid: these count against a subject's open limit. */
export function isOpenStatus(status: PaymentStatus): boolean {
  // `authorized` is not open: a verified credential is waiting for its run, not for a payer.
  return status === 'requires_method' || status === 'pending' || status === 'unknown';
}

/**
 * A record as stores keep and hand it out: frozen all the way down, so no caller can change
 * stored state except through the store. Transitions build new records instead.
 */
export function freezeRecord(record: IntentRecord): IntentRecord {
  if (Object.isFrozen(record)) return record;
  Object.freeze(record.binding);
  for (const attempt of record.attempts) deepFreeze(attempt);
  Object.freeze(record.attempts);
  Object.freeze(record.eligible);
  Object.freeze(record.runErrors);
  if (record.plannedAttempt) Object.freeze(record.plannedAttempt);
  if (record.lease) Object.freeze(record.lease);
  if (record.result) {
    deepFreeze(record.result.result);
    Object.freeze(record.result);
  }
  return Object.freeze(record);
}

function deepFreeze(value: unknown): void {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return;
  for (const child of Object.values(value)) deepFreeze(child);
  Object.freeze(value);
}

/**
 * A shallow copy of `value` without `key`, for transitions that drop a field. Not `const { key:
 * _, ...rest } = value`: V8 runs that destructuring ten times slower than this loop.
 */
export function withoutKey<T extends object, K extends keyof T>(value: T, key: K): Omit<T, K> {
  const copy: Record<string, unknown> = {};
  for (const name of Object.keys(value)) {
    if (name !== key) copy[name] = (value as Record<string, unknown>)[name];
  }
  return copy as Omit<T, K>;
}

/** The argument bytes an intent stores, as the per-subject limit counts them. */
export function argumentBytes(record: IntentRecord): number {
  return Buffer.byteLength(record.argsJson);
}

/** The amount an intent is bound to. */
export function intentMoney(intent: IntentRecord): Money {
  return { minor: intent.binding.amount, currency: intent.binding.currency };
}
