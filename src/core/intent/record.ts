import type { Money } from '../money/money.js';
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

/** Whether the bound tool has run. `running` carries a lease so a crashed instance does not block forever. */
export type RunState = 'unused' | 'running' | 'done';

export interface RunLease {
  owner: string;
  /** ms since epoch after which another instance may take over. */
  until: number;
  /** Monotonic fencing token: a stale owner's completion is rejected. */
  fence: number;
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
  createdAt: number;
  updatedAt: number;
  /** When the record may be deleted (ms since epoch): provider expiry while open, result retention after. */
  expiresAt: number;
}

/** Key for "the open intent of this subject for this exact call". */
export function bindingKey(b: Binding): string {
  return [b.subject, b.tool, b.argsHash, b.amount, b.currency].map(encodeURIComponent).join('|');
}

/** The amount an intent is bound to. */
export function intentMoney(intent: IntentRecord): Money {
  return { minor: intent.binding.amount, currency: intent.binding.currency };
}
