import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** What a sealed requestState says: which round of which paid call, for whom, until when. */
export interface RequestStatePayload {
  /** The intent (payment) the round belongs to. */
  intentId: string;
  tool: string;
  /** sha256 of the call's canonical arguments. */
  argsHash: string;
  /** Which question went out: the method choice, or the payment link (its delivery id). */
  step: { kind: 'choose' } | { kind: 'deliver'; deliveryId: string };
  /** Single use: the id the store records when the state is redeemed. */
  nonce: string;
  /** ms since epoch. */
  expiresAt: number;
}

export type OpenedState =
  | { ok: true; payload: RequestStatePayload; subjectTag: string }
  | { ok: false; reason: 'malformed' | 'mac' | 'expired' };

/** What a task id names: the payment, its call, when the task began (ms), and its payer's keyed tag. */
export interface TaskIdPayload {
  intentId: string;
  tool: string;
  argsHash: string;
  createdAt: number;
  subjectTag: string;
}

const TASK_ID_PREFIX = 'payrouter.task1.';

/** Every payrouter requestState starts with this, so a server's own `requestState.verify` can let it through. */
export const REQUEST_STATE_PREFIX = 'payrouter.rs1.';

const MAX_STATE_LENGTH = 4096;

/**
 * Seals requestState with HMAC-SHA256 under the server key: `payrouter.rs1.<body>.<mac>`, body the
 * base64url JSON payload (signed, not encrypted: it carries ids and hashes, never a secret or the
 * payer's identity, which is bound as a keyed tag). The store enforces single use, not this codec.
 */
export class RequestStateSealer {
  readonly #key: Buffer;

  constructor(key: Uint8Array) {
    if (key.byteLength < 32) throw new RangeError('requestState key must be at least 32 bytes');
    this.#key = Buffer.from(key);
  }

  /** A keyed tag of the payer, so the state names them without revealing them. */
  subjectTag(subject: string): string {
    return this.#mac(`payrouter.subject\u0000${subject}`).subarray(0, 16).toString('base64url');
  }

  seal(payload: Omit<RequestStatePayload, 'nonce'>, subject: string): { state: string; nonce: string } {
    const nonce = randomBytes(18).toString('base64url');
    const body = Buffer.from(
      JSON.stringify({
        i: payload.intentId,
        t: payload.tool,
        a: payload.argsHash,
        k: payload.step.kind === 'choose' ? 'c' : 'd',
        ...(payload.step.kind === 'deliver' ? { d: payload.step.deliveryId } : {}),
        n: nonce,
        e: payload.expiresAt,
        s: this.subjectTag(subject),
      }),
    ).toString('base64url');
    const signed = `${REQUEST_STATE_PREFIX}${body}`;
    return { state: `${signed}.${this.#mac(signed).toString('base64url')}`, nonce };
  }

  open(state: unknown, now: number): OpenedState {
    if (
      typeof state !== 'string' ||
      state.length > MAX_STATE_LENGTH ||
      !state.startsWith(REQUEST_STATE_PREFIX)
    )
      return { ok: false, reason: 'malformed' };
    const dot = state.lastIndexOf('.');
    const signed = state.slice(0, dot);
    if (dot <= REQUEST_STATE_PREFIX.length) return { ok: false, reason: 'malformed' };
    const given = Buffer.from(state.slice(dot + 1), 'base64url');
    const expected = this.#mac(signed);
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      return { ok: false, reason: 'mac' };
    let raw: Record<string, unknown>;
    try {
      raw = JSON.parse(Buffer.from(signed.slice(REQUEST_STATE_PREFIX.length), 'base64url').toString('utf8'));
    } catch {
      return { ok: false, reason: 'malformed' };
    }
    const { i, t, a, k, d, n, e, s } = raw;
    if (
      typeof i !== 'string' ||
      typeof t !== 'string' ||
      typeof a !== 'string' ||
      typeof n !== 'string' ||
      typeof e !== 'number' ||
      typeof s !== 'string' ||
      (k !== 'c' && k !== 'd') ||
      (k === 'd' && typeof d !== 'string')
    )
      return { ok: false, reason: 'malformed' };
    if (e <= now) return { ok: false, reason: 'expired' };
    return {
      ok: true,
      subjectTag: s,
      payload: {
        intentId: i,
        tool: t,
        argsHash: a,
        step: k === 'c' ? { kind: 'choose' } : { kind: 'deliver', deliveryId: d as string },
        nonce: n,
        expiresAt: e,
      },
    };
  }

  /**
   * A task id (`payrouter.task1.<body>.<mac>`): the payment it waits for, its call and a keyed tag
   * of its payer, sealed like a requestState, with a random nonce so it cannot be guessed. The
   * task's state is the payment's own, in the store: the id is all a process needs.
   */
  sealTask(task: Omit<TaskIdPayload, 'subjectTag'>, subject: string): string {
    const body = Buffer.from(
      JSON.stringify({
        i: task.intentId,
        t: task.tool,
        a: task.argsHash,
        c: task.createdAt,
        n: randomBytes(12).toString('base64url'),
        s: this.subjectTag(subject),
      }),
    ).toString('base64url');
    const signed = `${TASK_ID_PREFIX}${body}`;
    return `${signed}.${this.#mac(signed).toString('base64url')}`;
  }

  /** The payload of a task id this key sealed, or undefined for anything else. */
  openTask(taskId: unknown): TaskIdPayload | undefined {
    if (typeof taskId !== 'string' || taskId.length > MAX_STATE_LENGTH || !taskId.startsWith(TASK_ID_PREFIX))
      return undefined;
    const dot = taskId.lastIndexOf('.');
    if (dot <= TASK_ID_PREFIX.length) return undefined;
    const signed = taskId.slice(0, dot);
    const given = Buffer.from(taskId.slice(dot + 1), 'base64url');
    const expected = this.#mac(signed);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    let raw: Record<string, unknown>;
    try {
      raw = JSON.parse(Buffer.from(signed.slice(TASK_ID_PREFIX.length), 'base64url').toString('utf8'));
    } catch {
      return undefined;
    }
    const { i, t, a, c, s } = raw;
    if (
      typeof i !== 'string' ||
      typeof t !== 'string' ||
      typeof a !== 'string' ||
      typeof c !== 'number' ||
      typeof s !== 'string'
    )
      return undefined;
    return { intentId: i, tool: t, argsHash: a, createdAt: c, subjectTag: s };
  }

  /** Constant-time comparison of two subject tags. */
  sameTag(a: string, b: string): boolean {
    const x = Buffer.from(a);
    const y = Buffer.from(b);
    return x.length === y.length && timingSafeEqual(x, y);
  }

  #mac(text: string): Buffer {
    return createHmac('sha256', this.#key).update(text).digest();
  }
}

/**
 * Whether an echoed requestState is payrouter's. A server with its own `requestState.verify` hook
 * lets these through unchanged (return undefined for them): payrouter checks its own.
 */
export function isPayrouterRequestState(state: unknown): boolean {
  return typeof state === 'string' && state.startsWith(REQUEST_STATE_PREFIX);
}
