import type { Agent } from 'undici';
import { ProviderError } from '../../core/errors.js';
import { type Logger, redactText } from '../../core/logger.js';
import { codeForStatus, errorCode, NOT_PROCESSED_CODES, walleotErrorDetail } from './errors.js';

/**
 * The HTTP side of WalleotProvider: one keep-alive connection pool (undici, imported on the first
 * request), a deadline per attempt, error classification into ProviderError, and retries that
 * never risk a second session. The API key lives in a private field.
 *
 * Walleot has no idempotency keys, so a POST is retried only when the
 * server surely did not act on it: a 429, or a connection that failed before any answer. A GET
 * is retried on 5xx, 429, timeouts and connection errors.
 */

export interface WalleotHttpOptions {
  providerId: string;
  /** Already validated: http(s), no query, no credentials. */
  baseUrl: URL;
  apiKey: string;
  timeoutMs: number;
  maxRetries: number;
  logger: Logger;
}

type Method = 'GET' | 'POST';

/** Longest server-requested wait (`Retry-After`, `X-RateLimit-Reset`) we sit through before retrying. */
const MAX_SERVER_WAIT_MS = 5_000;
const BACKOFF_BASE_MS = 100;
const BACKOFF_CAP_MS = 1_000;
const MAX_RESPONSE_BYTES = 1024 * 1024;
const MAX_ERROR_TEXT = 300;

type Attempt =
  | { kind: 'response'; status: number; headers: Record<string, string | string[] | undefined>; text: string }
  | { kind: 'failure'; error: ProviderError; notProcessed: boolean };

let undici: Promise<typeof import('undici')> | undefined;

/** undici, imported once on first use (importing payrouter loads no provider SDK). */
function loadUndici(): Promise<typeof import('undici')> {
  undici ??= import('undici').catch((error: unknown) => {
    undici = undefined;
    throw error;
  });
  return undici;
}

export class WalleotHttpClient {
  readonly #options: Omit<WalleotHttpOptions, 'apiKey'>;
  readonly #apiKey: string;
  #agent: Promise<Agent> | undefined;
  private readonly origin: string;
  private readonly basePath: string;
  private closing: Promise<void> | undefined;

  constructor(options: WalleotHttpOptions) {
    const { apiKey, ...rest } = options;
    this.#apiKey = apiKey;
    this.#options = rest;
    this.origin = options.baseUrl.origin;
    this.basePath = options.baseUrl.pathname.replace(/\/+$/, '');
  }

  /** The connection pool, built on the first request. */
  #pool(): Promise<Agent> {
    this.#agent ??= loadUndici().then(
      ({ Agent }) =>
        new Agent({
          keepAliveTimeout: 10_000,
          keepAliveMaxTimeout: 60_000,
          connections: 32,
          connectTimeout: Math.min(this.#options.timeoutMs, 10_000),
          maxResponseSize: MAX_RESPONSE_BYTES,
        }),
      (error: unknown) => {
        this.#agent = undefined;
        throw error;
      },
    );
    return this.#agent;
  }

  toJSON(): { origin: string } {
    return { origin: this.origin };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `WalleotHttpClient { origin: '${this.origin}' }`;
  }

  /** Send one API call (with retries) and return the parsed JSON body of its 2xx answer. */
  async request(
    method: Method,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<unknown> {
    if (this.closing !== undefined) {
      throw new ProviderError(this.#options.providerId, 'provider_unavailable', 'the provider was closed');
    }
    const payload = body === undefined ? undefined : JSON.stringify(body);
    for (let attempt = 0; ; attempt++) {
      const outcome = await this.attempt(method, path, payload, headers, attempt);
      let failure: ProviderError;
      let retrySafe: boolean;
      let waitMs: number | undefined;
      if (outcome.kind === 'response') {
        if (outcome.status >= 200 && outcome.status < 300) return this.parseJson(method, path, outcome.text);
        failure = this.httpError(method, path, outcome.status, outcome.headers, outcome.text);
        const transient = outcome.status === 429 || outcome.status === 408 || outcome.status >= 500;
        retrySafe = method === 'GET' ? transient : outcome.status === 429;
        waitMs = failure.retryAfterMs;
      } else {
        failure = outcome.error;
        retrySafe = method === 'GET' || outcome.notProcessed;
      }
      if (!retrySafe || attempt >= this.#options.maxRetries) throw failure;
      const delay = waitMs ?? backoffMs(attempt);
      // A server asking for a long pause is better served by the caller's own scheduling.
      if (delay > MAX_SERVER_WAIT_MS) throw failure;
      this.#options.logger.debug('walleot retrying', {
        provider: this.#options.providerId,
        method,
        path: this.basePath + path,
        attempt: attempt + 1,
        delayMs: delay,
        reason: failure.code,
      });
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  close(): Promise<void> {
    // Nothing to close when no request was ever made: undici is not even loaded.
    this.closing ??=
      this.#agent === undefined
        ? Promise.resolve()
        : this.#agent.then(
            (agent) => agent.close(),
            () => undefined,
          );
    return this.closing;
  }

  private async attempt(
    method: Method,
    path: string,
    payload: string | undefined,
    extraHeaders: Record<string, string>,
    attempt: number,
  ): Promise<Attempt> {
    const fullPath = this.basePath + path;
    const started = performance.now();
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.#options.timeoutMs);
    const log = (fields: Record<string, unknown>): void =>
      this.#options.logger.debug('walleot request', {
        provider: this.#options.providerId,
        method,
        path: fullPath,
        attempt,
        durationMs: Math.round(performance.now() - started),
        ...fields,
      });
    try {
      const agent = await this.#pool();
      const response = await agent.request({
        origin: this.origin,
        path: fullPath,
        method,
        headers: {
          authorization: `Bearer ${this.#apiKey}`,
          accept: 'application/json',
          'user-agent': 'payrouter',
          ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
          ...extraHeaders,
        },
        body: payload ?? null,
        signal: controller.signal,
      });
      const text = await response.body.text();
      log({ status: response.statusCode });
      return { kind: 'response', status: response.statusCode, headers: response.headers, text };
    } catch (error) {
      const code = errorCode(error);
      log({ error: timedOut ? 'timeout' : (code ?? 'unknown') });
      if (timedOut) {
        return {
          kind: 'failure',
          error: new ProviderError(
            this.#options.providerId,
            'timeout',
            `${method} ${fullPath} got no answer within ${this.#options.timeoutMs} ms`,
          ),
          notProcessed: false,
        };
      }
      if (code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') {
        return {
          kind: 'failure',
          error: new ProviderError(
            this.#options.providerId,
            'malformed_response',
            `${method} ${fullPath} answered with more than ${MAX_RESPONSE_BYTES} bytes`,
          ),
          notProcessed: false,
        };
      }
      return {
        kind: 'failure',
        error: new ProviderError(
          this.#options.providerId,
          'provider_unavailable',
          `${method} ${fullPath} failed: ${code ?? 'connection error'}`,
        ),
        notProcessed: code !== undefined && NOT_PROCESSED_CODES.has(code),
      };
    } finally {
      clearTimeout(timer);
    }
  }

  private parseJson(method: Method, path: string, text: string): unknown {
    try {
      return JSON.parse(text);
    } catch {
      throw new ProviderError(
        this.#options.providerId,
        'malformed_response',
        `${method} ${this.basePath + path} answered with a body that is not JSON`,
      );
    }
  }

  private httpError(
    method: Method,
    path: string,
    status: number,
    headers: Record<string, string | string[] | undefined>,
    text: string,
  ): ProviderError {
    const detail = walleotErrorDetail(text);
    const safeDetail = detail === '' ? '' : ` (${this.sanitize(detail)})`;
    const retryAfterMs = status === 429 || status === 503 ? serverWaitMs(headers, status) : undefined;
    return new ProviderError(
      this.#options.providerId,
      codeForStatus(status),
      `${method} ${this.basePath + path} answered HTTP ${status}${safeDetail}`,
      { status, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) },
    );
  }

  /** Provider text is untrusted: bounded, single-line, and never carrying our key even if echoed. */
  private sanitize(text: string): string {
    const flat = text.replace(/\p{Cc}+/gu, ' ').slice(0, MAX_ERROR_TEXT);
    return redactText(flat.split(this.#apiKey).join('[redacted]'));
  }
}

function backoffMs(attempt: number): number {
  const base = Math.min(BACKOFF_BASE_MS * 2 ** attempt, BACKOFF_CAP_MS);
  // Half fixed, half random, so clients that failed together do not retry together.
  return Math.round(base / 2 + Math.random() * (base / 2));
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * How long the server asked us to wait: `Retry-After` (seconds or HTTP date), else on a 429 the
 * `X-RateLimit-Reset` of an exhausted window (its format is undocumented: unix seconds when it
 * looks like a timestamp, else seconds from now).
 */
export function serverWaitMs(
  headers: Record<string, string | string[] | undefined>,
  status: number,
): number | undefined {
  const retryAfter = header(headers, 'retry-after')?.trim();
  if (retryAfter !== undefined && retryAfter !== '') {
    if (/^\d+(\.\d+)?$/.test(retryAfter)) return Math.ceil(Number(retryAfter) * 1000);
    const date = Date.parse(retryAfter);
    if (!Number.isNaN(date)) return Math.max(0, date - Date.now());
  }
  const reset = header(headers, 'x-ratelimit-reset')?.trim();
  if (status === 429 && reset !== undefined && /^\d+$/.test(reset)) {
    const value = Number(reset);
    return value > 1_000_000_000 ? Math.max(0, value * 1000 - Date.now()) : value * 1000;
  }
  return undefined;
}
