import type { ServerResponse } from 'node:http';

/**
 * HTML and JSON responses of the hosted pages. Every interpolated value is escaped unless it is
 * already SafeHtml, so a tool description or provider label can never inject markup.
 */

/** Markup built by `html` (its values already escaped). */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

// Own copy rather than the sandbox's: the sandbox is a separate entry point.
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function fragment(value: unknown): string {
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return value.map(fragment).join('');
  if (value === undefined || value === null || value === false) return '';
  return escapeHtml(String(value));
}

/** Tagged template: `html\`<p>${text}</p>\`` escapes `text`; nested `html` and arrays of it stay markup. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0] ?? '';
  values.forEach((value, i) => {
    out += fragment(value) + (strings[i + 1] ?? '');
  });
  return new SafeHtml(out);
}

/**
 * The provider's checkout is reached by a redirect after our own form POST; Chromium applies
 * form-action to that redirect too, so any http(s) target must be allowed.
 */
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'";

const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'x-frame-options': 'DENY',
};

const STYLE = `
body{font-family:system-ui,-apple-system,sans-serif;background:#f4f5f7;color:#1d1d1f;margin:0;display:flex;justify-content:center;padding:48px 16px}
main{background:#fff;border-radius:12px;box-shadow:0 2px 12px #0002;padding:32px;max-width:440px;width:100%}
h1{font-size:1.25em;margin:0 0 4px}.amount{font-size:2.2em;margin:12px 0 4px}
.desc{color:#444;margin:0 0 16px;overflow-wrap:anywhere}.status{font-size:.95em;margin:16px 0}
.tool{color:#666;font-size:.9em;overflow-wrap:anywhere}.note{color:#666;font-size:.85em}
form{margin:0}button{width:100%;padding:13px;font-size:1em;border:0;border-radius:8px;cursor:pointer;margin-top:8px;background:#e4e6eb;color:#222}
button.primary{background:#3451b2;color:#fff}a{color:#3451b2}
`;

export function page(title: string, body: SafeHtml): string {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title><style>${new SafeHtml(STYLE)}</style></head>
<body><main>
${body}
</main></body></html>`.value;
}

export function sendHtml(
  res: ServerResponse,
  status: number,
  document: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    ...PAGE_HEADERS,
    'content-type': 'text/html; charset=utf-8',
    'content-length': String(Buffer.byteLength(document)),
    ...headers,
  });
  res.end(document);
}

/** A short page that says what went wrong and nothing more (no internals, no stack traces). */
export function sendMessagePage(
  res: ServerResponse,
  status: number,
  title: string,
  message: string,
  headers: Record<string, string> = {},
): void {
  sendHtml(res, status, page(title, html`<h1>${title}</h1><p class="status">${message}</p>`), headers);
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(text);
}

export function redirect(res: ServerResponse, location: string): void {
  res.writeHead(303, {
    location,
    'content-length': '0',
    'cache-control': 'no-store',
    'referrer-policy': 'no-referrer',
  });
  res.end();
}
