import type { IncomingMessage } from 'node:http';

/**
 * Request bodies, raw and bounded. Frameworks may have read the stream before us: a raw Buffer or
 * string they left in `req.body` is used as is; an object they parsed is usable for forms, but not
 * for webhooks, whose signatures cover the exact bytes.
 */

export const WEBHOOK_BODY_LIMIT = 1024 * 1024;
export const FORM_BODY_LIMIT = 16 * 1024;

export type RawBody =
  | { kind: 'raw'; bytes: Buffer }
  /** A framework parsed the body into an object: the exact bytes are gone. */
  | { kind: 'parsed'; value: object }
  | { kind: 'too_large' }
  | { kind: 'failed' };

type WithBody = IncomingMessage & { body?: unknown; _body?: unknown };

/** What a framework left in `req.body`, when it read the stream. */
function frameworkBody(req: WithBody): RawBody | undefined {
  const body = req.body;
  if (Buffer.isBuffer(body)) return { kind: 'raw', bytes: body };
  if (body instanceof Uint8Array)
    return { kind: 'raw', bytes: Buffer.from(body.buffer, body.byteOffset, body.byteLength) };
  if (typeof body === 'string') return { kind: 'raw', bytes: Buffer.from(body, 'utf8') };
  if (body !== null && typeof body === 'object') {
    // body-parser 1.x sets `req.body = {}` even when it skipped the request: the stream is still unread then.
    const consumed = req.readableEnded || req._body === true;
    if (consumed) return { kind: 'parsed', value: body };
  }
  return undefined;
}

/** Past the limit the rest is read and dropped (so the client sees our 413), up to this many bytes. */
const DRAIN_LIMIT = 4 * 1024 * 1024;

/** The request body as bytes, at most `limit` of them. */
export async function readRawBody(req: IncomingMessage, limit: number): Promise<RawBody> {
  const given = frameworkBody(req as WithBody);
  if (given !== undefined) {
    return given.kind === 'raw' && given.bytes.length > limit ? { kind: 'too_large' } : given;
  }
  // Someone read the stream and kept nothing: the bytes are gone (and 'end' will not come again).
  if (req.readableEnded) return { kind: 'parsed', value: {} };
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const declared = Number(req.headers['content-length']);
    let tooLarge = Number.isFinite(declared) && declared > limit;
    const finish = (result: RawBody) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) tooLarge = true;
      if (!tooLarge) {
        chunks.push(chunk);
      } else if (size > limit + DRAIN_LIMIT) {
        // Not worth reading further: drop the connection.
        req.destroy();
        finish({ kind: 'too_large' });
      }
    };
    const onEnd = () =>
      finish(tooLarge ? { kind: 'too_large' } : { kind: 'raw', bytes: Buffer.concat(chunks) });
    const onError = () => finish(tooLarge ? { kind: 'too_large' } : { kind: 'failed' });
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

export type FormBody =
  | { kind: 'fields'; fields: Record<string, unknown> }
  | { kind: 'too_large' }
  | { kind: 'failed' };

/** An `application/x-www-form-urlencoded` body as fields (the first value of a repeated name wins). */
export async function readFormBody(req: IncomingMessage, limit: number): Promise<FormBody> {
  const body = await readRawBody(req, limit);
  switch (body.kind) {
    case 'parsed':
      return { kind: 'fields', fields: { ...(body.value as Record<string, unknown>) } };
    case 'raw': {
      const first = new Map<string, string>();
      for (const [name, value] of new URLSearchParams(body.bytes.toString('utf8'))) {
        if (!first.has(name)) first.set(name, value);
      }
      return { kind: 'fields', fields: Object.fromEntries(first) };
    }
    default:
      return body;
  }
}
