import type { SandboxClock } from './harness.js';
import { randomId } from './harness.js';

/** The five statuses Walleot documents for a session (British `cancelled`). */
export const WALLEOT_SESSION_STATUSES = ['pending', 'paid', 'failed', 'expired', 'cancelled'] as const;
export type WalleotSessionStatus = (typeof WALLEOT_SESSION_STATUSES)[number];

export type WalleotAutoPay = 'off' | 'first_poll';

/** One session as the stand-in keeps it. `amount` is in cents, as on the wire. */
export interface WalleotSession {
  id: string;
  status: WalleotSessionStatus;
  amount: number;
  /** Lowercase, as sent. */
  currency: string;
  description: string;
  /** Sandbox-clock milliseconds. */
  createdAt: number;
  expiresAt: number;
}

/**
 * The stand-in's sessions. Expiry is computed lazily against the sandbox clock on every read, so
 * advancing the clock expires pending sessions without any timer.
 */
export class WalleotSessionBook {
  private readonly sessions = new Map<string, WalleotSession>();
  autoPay: WalleotAutoPay = 'off';

  constructor(
    private readonly clock: SandboxClock,
    private readonly ttlSeconds: number,
  ) {}

  create(input: { amount: number; currency: string; description: string }): WalleotSession {
    const now = this.clock.now();
    const session: WalleotSession = {
      id: randomId('sess_'),
      status: 'pending',
      amount: input.amount,
      currency: input.currency,
      description: input.description,
      createdAt: now,
      expiresAt: now + this.ttlSeconds * 1000,
    };
    this.sessions.set(session.id, session);
    return { ...session };
  }

  /** The session with expiry applied, or undefined. */
  get(id: string): WalleotSession | undefined {
    const session = this.sessions.get(id);
    if (session === undefined) return undefined;
    if (session.status === 'pending' && this.clock.now() >= session.expiresAt) session.status = 'expired';
    return session;
  }

  /** What `GET /v1/sessions/{id}` sees: with auto-pay on, a pending session is paid at its first poll. */
  readStatus(id: string): WalleotSessionStatus | undefined {
    const session = this.get(id);
    if (session === undefined) return undefined;
    if (session.status === 'pending' && this.autoPay === 'first_poll') session.status = 'paid';
    return session.status;
  }

  setStatus(id: string, status: WalleotSessionStatus): boolean {
    const session = this.sessions.get(id);
    if (session === undefined) return false;
    session.status = status;
    return true;
  }

  /** The checkout page's Pay/Cancel: only a session still pending moves. */
  settle(id: string, status: 'paid' | 'cancelled'): boolean {
    const session = this.get(id);
    if (session === undefined || session.status !== 'pending') return false;
    session.status = status;
    return true;
  }

  clear(): void {
    this.sessions.clear();
    this.autoPay = 'off';
  }
}
