import type { SandboxClock } from './harness.js';
import { type ApiResponse, stripeError } from './stripe-responses.js';

/**
 * Stripe's idempotency (docs.stripe.com/idempotency), per (API key, key):
 * the same parameters replay the first status and body; other parameters get 400
 * `idempotency_error`; a duplicate while the first is still executing gets 409; requests that
 * failed validation save nothing; keys are forgotten 24 hours after their first use.
 */

const RETENTION_MS = 24 * 60 * 60 * 1000;
const MAX_KEY_LENGTH = 255;

interface Entry {
  fingerprint: string;
  startedAt: number;
  /** Undefined while the first request is still executing. */
  saved?: { response: ApiResponse; requestId: string };
}

/** Either the answer to send now (replay or refusal), or go ahead and report the result with `finish`. */
export type IdempotencyGate =
  | { answer: ApiResponse }
  | { finish(response: ApiResponse, requestId: string): void };

export class IdempotencyStore {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly clock: SandboxClock) {}

  /** What to do with a request carrying `key`; `fingerprint` identifies its method, path and parameters. */
  begin(apiKey: string, key: string, fingerprint: string): IdempotencyGate {
    if (key.length > MAX_KEY_LENGTH) {
      const message = `Idempotency-Key is ${key.length} characters long; the maximum is ${MAX_KEY_LENGTH}.`;
      return { answer: stripeError(400, { message }, { save: false }) };
    }
    const id = `${apiKey}\u0000${key}`;
    const now = this.clock.now();
    if (this.entries.size > 10_000) this.sweep(now);
    const existing = this.entries.get(id);
    if (existing !== undefined && now - existing.startedAt < RETENTION_MS) {
      if (existing.saved === undefined) {
        const message =
          'There is currently another in-progress request using this Stripe token (probably this idempotency key). Please try again later.';
        return { answer: stripeError(409, { code: 'idempotency_key_in_use', message }, { save: false }) };
      }
      if (existing.fingerprint !== fingerprint) {
        const message = `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`;
        return { answer: stripeError(400, { type: 'idempotency_error', message }, { save: false }) };
      }
      const { response, requestId } = existing.saved;
      return {
        answer: {
          ...response,
          headers: { ...response.headers, 'idempotent-replayed': 'true', 'original-request': requestId },
        },
      };
    }
    const entry: Entry = { fingerprint, startedAt: now };
    this.entries.set(id, entry);
    return {
      finish: (response, requestId) => {
        if (this.entries.get(id) !== entry) return; // reset while executing
        if (response.save) entry.saved = { response, requestId };
        else this.entries.delete(id);
      },
    };
  }

  private sweep(now: number): void {
    for (const [id, entry] of this.entries) {
      if (entry.saved !== undefined && now - entry.startedAt >= RETENTION_MS) this.entries.delete(id);
    }
  }

  clear(): void {
    this.entries.clear();
  }
}
