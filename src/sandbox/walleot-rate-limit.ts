import type { SandboxClock } from './harness.js';

export type WalleotRateBucket = 'create' | 'status';

export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Unix seconds (sandbox clock) when the current window ends. */
  resetAt: number;
  /** Seconds until then, at least 1: what `Retry-After` says on a 429. */
  retryAfterSeconds: number;
}

const WINDOW_SECONDS = 60;

/**
 * Walleot's per-key, per-minute limits (100 creates, 1000 status reads). A one-minute window opens
 * at the first request after the previous one closed, on the sandbox clock, so tests can move past
 * a window instead of waiting for it and never straddle a wall-clock minute by accident.
 */
export class WalleotRateLimiter {
  private readonly counts = new Map<string, { windowStart: number; used: number }>();

  constructor(
    private readonly clock: SandboxClock,
    private readonly limits: Record<WalleotRateBucket, number>,
  ) {}

  /** Count one request for `key` in `bucket` and say whether it is allowed. */
  consume(key: string, bucket: WalleotRateBucket): RateDecision {
    return this.decide(key, bucket, true);
  }

  /** The current window without counting anything (for responses that never reached the limiter). */
  peek(key: string, bucket: WalleotRateBucket): RateDecision {
    return this.decide(key, bucket, false);
  }

  clear(): void {
    this.counts.clear();
  }

  private decide(key: string, bucket: WalleotRateBucket, count: boolean): RateDecision {
    const now = this.clock.nowSeconds();
    const id = `${bucket}\u0000${key}`;
    let entry = this.counts.get(id);
    if (entry === undefined || now >= entry.windowStart + WINDOW_SECONDS) {
      entry = { windowStart: now, used: 0 };
      if (count) this.counts.set(id, entry);
    }
    const limit = this.limits[bucket];
    const allowed = entry.used < limit;
    if (count && allowed) entry.used += 1;
    const resetAt = entry.windowStart + WINDOW_SECONDS;
    return {
      allowed,
      limit,
      remaining: Math.max(0, limit - entry.used),
      resetAt,
      retryAfterSeconds: Math.max(1, resetAt - now),
    };
  }
}

export function rateLimitHeaders(decision: RateDecision): Record<string, string> {
  return {
    'x-ratelimit-limit': String(decision.limit),
    'x-ratelimit-remaining': String(decision.remaining),
    'x-ratelimit-reset': String(decision.resetAt),
  };
}
