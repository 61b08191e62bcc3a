import { createHash } from 'node:crypto';
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

const STYLE = `
*,*::before,*::after{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f4f5f7;color:#1d1d1f}
.test-mode{margin:0;padding:10px 16px;background:#fff4ce;color:#5c4400;border-bottom:1px solid #e8d48a;text-align:center;font-size:.9em;font-weight:600}
.wrap{display:flex;justify-content:center;padding:40px 16px}
main{background:#fff;border-radius:14px;box-shadow:0 2px 14px #0000001f;padding:32px;width:100%;max-width:460px;min-width:0}
.merchant{margin:0 0 20px;color:#555;font-size:.9em;font-weight:600;letter-spacing:.01em;overflow-wrap:anywhere}
h1{font-size:1.4em;line-height:1.25;margin:0 0 4px;overflow-wrap:anywhere}
.amount{font-size:2.2em;font-weight:650;margin:8px 0 2px;font-variant-numeric:tabular-nums}
.what{color:#444;margin:0 0 20px;overflow-wrap:anywhere}
.status{margin:16px 0}
.status.paid{color:#0a6b35;font-weight:600}
form{margin:0}
button{display:block;width:100%;text-align:left;padding:14px 16px;font:inherit;border:1px solid #d5d8de;border-radius:10px;cursor:pointer;margin-top:10px;background:#fff;color:#1d1d1f}
button:hover{border-color:#3451b2}
button:focus-visible{outline:3px solid #3451b280;outline-offset:2px}
button.primary{background:#3451b2;border-color:#3451b2;color:#fff}
button .label{display:block;font-weight:600}
button .detail{display:block;font-size:.88em;color:#555}
button.primary .detail{color:#e3e8ff}
.others{margin:20px 0 0;font-size:.9em;color:#555}
.note{color:#666;font-size:.85em;margin:16px 0 0}
.reference{margin:20px 0 0;padding:12px 14px;background:#f4f5f7;border-radius:10px;font-size:.88em;color:#444}
.reference code{display:block;font:.95em/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;color:#1d1d1f;word-break:break-all}
.reference p{margin:0}.reference p+p{margin-top:6px}
a{color:#3451b2}
main>:last-child{margin-bottom:0}
a.button{display:block;text-align:center;padding:13px 16px;border-radius:10px;background:#3451b2;color:#fff;font-weight:600;text-decoration:none;margin:16px 0 0}
a.button:focus-visible{outline:3px solid #3451b280;outline-offset:2px}
@media (max-width:480px){.wrap{padding:16px 12px}main{padding:22px 18px;border-radius:12px}.amount{font-size:2em}}
`;

/**
 * The only inline content is this stylesheet, allowed by its hash: no script runs on these pages.
 * The provider's checkout is reached by a redirect after our own form POST; Chromium applies
 * form-action to that redirect too, so any http(s) target must be allowed.
 */
const CONTENT_SECURITY_POLICY = `default-src 'none'; style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'; img-src 'none'; form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'`;

const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'x-frame-options': 'DENY',
};

/** What every page shows around its body: the test-mode banner and who the payer is paying. */
export interface PageFrame {
  serverName: string;
  testMode: boolean;
}

export function page(title: string, frame: PageFrame, body: SafeHtml): string {
  const banner = frame.testMode
    ? html`<p class="test-mode" id="test-mode" role="note">Test mode: sandbox payments, no real money moves.</p>`
    : '';
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title}</title><style>${new SafeHtml(STYLE)}</style></head>
<body>${banner}<div class="wrap"><main>
<p class="merchant" id="merchant">Payment to <span id="server-name">${frame.serverName}</span></p>
${body}
</main></div></body></html>`.value;
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
  frame: PageFrame,
  status: number,
  title: string,
  message: string | SafeHtml,
  headers: Record<string, string> = {},
): void {
  const body = html`<h1 id="heading">${title}</h1><p class="status" id="status">${message}</p>`;
  sendHtml(res, status, page(title, frame, body), headers);
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
