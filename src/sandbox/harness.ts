import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';

/**
 * What every sandbox stand-in shares: a controllable clock, fault injection, a request log and
 * the `/__test/*` control endpoints (a prefix neither real API uses).
 */

export class SandboxClock {
  private offsetMs = 0;
  now(): number {
    return Date.now() + this.offsetMs;
  }
  nowSeconds(): number {
    return Math.floor(this.now() / 1000);
  }
  advance(seconds: number): void {
    this.offsetMs += seconds * 1000;
  }
  reset(): void {
    this.offsetMs = 0;
  }
}

/** Option schema for a shared clock; duck-typed rather than instanceof, so a clock from another copy of the module still works. */
export const sandboxClockSchema = z.custom<SandboxClock>(
  (c) =>
    typeof c === 'object' &&
    c !== null &&
    ['now', 'nowSeconds', 'advance', 'reset'].every(
      (m) => typeof (c as Record<string, unknown>)[m] === 'function',
    ),
  { error: 'clock must be a SandboxClock' },
);

/** Body of `POST /__test/fail-next`, shared by both stand-ins. */
export const faultControlSchema = z.object({
  status: z.number().int().min(100).max(599).optional(),
  body: z.unknown().optional(),
  headers: z.record(z.string(), z.string()).optional(),
  kind: z.enum(['status', 'hang', 'malformed']).optional(),
  count: z.number().int().positive().optional(),
  delayMs: z.number().int().min(0).max(120_000).optional(),
  pathIncludes: z.string().optional(),
});

/** Body of `POST /__test/clock`. */
export const clockControlSchema = z.object({ advanceSeconds: z.number().finite() });

/** A fault served instead of the real answer for the next `count` API requests. */
export interface Fault {
  /** HTTP status to answer with (e.g. 500, 429, 409). Ignored for `hang` and `malformed`. */
  status?: number;
  /** JSON body to send with `status`; a provider-shaped error body is used when omitted. */
  body?: unknown;
  /** Extra response headers (e.g. `Retry-After`, `Stripe-Should-Retry`). */
  headers?: Record<string, string>;
  /** `hang`: never answer (the client times out); `malformed`: 200 with a body that is not JSON. */
  kind?: 'status' | 'hang' | 'malformed';
  /** How many requests this applies to (default 1). */
  count?: number;
  /** Latency added before answering (also usable alone, with no status, to slow real answers). */
  delayMs?: number;
  /** Only requests whose path contains this string are affected (default: all API requests). */
  pathIncludes?: string;
}

export class FaultInjector {
  private queue: Array<Fault & { remaining: number }> = [];
  add(fault: Fault): void {
    this.queue.push({ ...fault, remaining: Math.max(1, fault.count ?? 1) });
  }
  /** The fault for this request, consuming one use, or undefined. */
  take(path: string): Fault | undefined {
    const index = this.queue.findIndex((f) => f.pathIncludes === undefined || path.includes(f.pathIncludes));
    if (index < 0) return undefined;
    const fault = this.queue[index]!;
    fault.remaining -= 1;
    if (fault.remaining <= 0) this.queue.splice(index, 1);
    return fault;
  }
  clear(): void {
    this.queue = [];
  }
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: string;
  /** Header names lowercased; `authorization` is reduced to its scheme and last four characters. */
  headers: Record<string, string>;
  body: string;
  at: number;
}

export class RequestLog {
  readonly entries: RecordedRequest[] = [];
  record(req: IncomingMessage, body: string): void {
    const url = new URL(req.url ?? '/', 'http://sandbox');
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined) continue;
      const text = Array.isArray(value) ? value.join(', ') : value;
      headers[name] = name === 'authorization' ? maskAuthorization(text) : text;
    }
    this.entries.push({
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.search,
      headers,
      body,
      at: Date.now(),
    });
  }
  clear(): void {
    this.entries.length = 0;
  }
}

function maskAuthorization(value: string): string {
  const [scheme, token = ''] = value.split(' ');
  return `${scheme} ****${token.slice(-4)}`;
}

export function readBody(req: IncomingMessage, limitBytes = 1024 * 1024): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limitBytes) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** A `/__test/*` control body: JSON (empty means `{}`), or undefined when it is not valid JSON. */
export async function readControlJson(req: IncomingMessage): Promise<{ json: unknown } | undefined> {
  try {
    const text = await readBody(req, 64 * 1024);
    return { json: text.trim() === '' ? {} : JSON.parse(text) };
  } catch {
    return undefined;
  }
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export function sendHtml(
  res: ServerResponse,
  status: number,
  html: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action *",
    ...headers,
  });
  res.end(html);
}

export function redirect(res: ServerResponse, location: string): void {
  res.writeHead(303, { location, 'content-length': 0 });
  res.end();
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function randomId(prefix: string, bytes = 12): string {
  return `${prefix}${randomBytes(bytes).toString('base64url')}`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A running stand-in: its base URL and a way to stop it. */
export interface RunningServer {
  server: Server;
  port: number;
  /** `http://127.0.0.1:PORT` */
  origin: string;
  close(): Promise<void>;
}

/** Listen on 127.0.0.1 (port 0 = any free port). Open keep-alive sockets are closed on `close()`. */
export async function listen(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  port = 0,
): Promise<RunningServer> {
  const server = createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    server,
    port: actual,
    origin: `http://127.0.0.1:${actual}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * The checkout page a stand-in shows for one payment: amount, description, Pay and Cancel.
 * Buttons post back to the stand-in (`actionBase/pay`, `actionBase/cancel`).
 */
export function renderCheckoutPage(options: {
  brand: string;
  amountText: string;
  description: string;
  statusText: string;
  actionBase: string;
  open: boolean;
}): string {
  const { brand, amountText, description, statusText, actionBase, open } = options;
  const buttons = open
    ? `<form method="post" action="${escapeHtml(actionBase)}/pay"><button id="pay" type="submit">Pay ${escapeHtml(amountText)}</button></form>
       <form method="post" action="${escapeHtml(actionBase)}/cancel"><button id="cancel" type="submit" class="secondary">Cancel</button></form>`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(brand)} sandbox checkout</title>
<style>
body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;display:flex;justify-content:center;padding:48px 16px}
main{background:#fff;border-radius:12px;box-shadow:0 2px 12px #0002;padding:32px;max-width:420px;width:100%}
.brand{font-weight:600;color:#555}.amount{font-size:2.2em;margin:12px 0}.desc{color:#333;margin-bottom:24px;overflow-wrap:anywhere}
.status{font-size:.9em;color:#666;margin-bottom:16px}.sandbox{background:#fff3cd;padding:6px 10px;border-radius:6px;font-size:.8em}
button{width:100%;padding:14px;font-size:1.05em;border:0;border-radius:8px;background:#3451b2;color:#fff;cursor:pointer;margin-top:8px}
button.secondary{background:#e4e6eb;color:#222}
</style></head>
<body><main>
<div class="brand">${escapeHtml(brand)}</div>
<div class="amount" id="amount">${escapeHtml(amountText)}</div>
<div class="desc" id="description">${escapeHtml(description)}</div>
<div class="status" id="status">${escapeHtml(statusText)}</div>
${buttons}
<p class="sandbox">Sandbox: no real money moves.</p>
</main></body></html>`;
}
