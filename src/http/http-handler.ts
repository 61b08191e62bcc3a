import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PaymentDesk } from '../engine/desk.js';
import { sendJson, sendMessagePage } from './html.js';
import { choosePayMethod, showPayPage } from './pay-page.js';
import { showReturnPage } from './return-page.js';
import { handleWebhook } from './webhook-endpoint.js';

/** A node request listener; also an Express/Connect middleware (unknown paths go to `next`). */
export type HttpHandler = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void;

type Route =
  | { kind: 'webhook'; providerId: string }
  | { kind: 'pay'; id: string; query: URLSearchParams }
  | { kind: 'return'; id: string; query: URLSearchParams };

const ROUTE_PATTERN = /^\/(webhooks|pay|return)\/([^/]+)$/;
const PROVIDER_ID = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * Serves, under the path of `publicUrl` only: `POST /webhooks/:providerId`, `GET|POST /pay/:id`
 * and `GET /return/:id`. Everything else goes to `next` (Express/Connect), or gets a 404 when the
 * handler is a plain listener, so the host app's own `/webhooks/*`, `/pay/*` and `/return/*` keep
 * working. Mounted under a prefix, Express strips it from `req.url`: the full path is read from
 * `req.originalUrl`.
 */
export function createHttpHandler(desk: PaymentDesk): HttpHandler {
  const basePath = new URL(desk.publicUrl).pathname.replace(/\/+$/, '');
  const frame = { serverName: desk.serverName, testMode: desk.testMode };

  const dispatch = async (route: Route, req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    switch (route.kind) {
      case 'webhook':
        if (!PROVIDER_ID.test(route.providerId)) {
          sendJson(res, 404, { error: 'No webhook endpoint for this provider' });
          return;
        }
        return handleWebhook(desk, route.providerId, req, res);
      case 'pay':
        if (method === 'GET' || method === 'HEAD') return showPayPage(desk, route.id, route.query, res);
        if (method === 'POST') return choosePayMethod(desk, route.id, req, res);
        sendMessagePage(res, frame, 405, 'Method not allowed', 'This page accepts GET and POST.', {
          allow: 'GET, HEAD, POST',
        });
        return;
      case 'return':
        if (method === 'GET' || method === 'HEAD') return showReturnPage(desk, route.id, route.query, res);
        sendMessagePage(res, frame, 405, 'Method not allowed', 'This page accepts GET.', {
          allow: 'GET, HEAD',
        });
        return;
    }
  };

  return (req, res, next) => {
    const route = matchRoute(requestPath(req), basePath);
    if (route === undefined) {
      if (next) next();
      else sendMessagePage(res, frame, 404, 'Not found', 'There is nothing at this address.');
      return;
    }
    dispatch(route, req, res).catch((error: unknown) => {
      desk.logger.error('payrouter http handler failed', { route: route.kind, error });
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // Never the error itself: it may name internals.
      if (route.kind === 'webhook') sendJson(res, 500, { error: 'Internal error; retry later' });
      else sendMessagePage(res, frame, 500, 'Something went wrong', 'Please try again in a moment.');
    });
  };
}

/** The path the client asked for: Express and Connect keep it in `originalUrl` when mounted under a prefix. */
function requestPath(req: IncomingMessage & { originalUrl?: unknown }): string {
  return typeof req.originalUrl === 'string' ? req.originalUrl : (req.url ?? '/');
}

function matchRoute(url: string, basePath: string): Route | undefined {
  // Split by hand rather than `new URL(url, base)`: a request path like `//host/x` must stay a path.
  const queryAt = url.indexOf('?');
  const path = queryAt === -1 ? url : url.slice(0, queryAt);
  const query = new URLSearchParams(queryAt === -1 ? '' : url.slice(queryAt + 1));
  if (basePath !== '' && !path.startsWith(`${basePath}/`)) return undefined;
  const match = ROUTE_PATTERN.exec(path.slice(basePath.length));
  if (match === null) return undefined;
  const [, kind, segment = ''] = match;
  if (kind === 'webhooks') return { kind: 'webhook', providerId: segment };
  if (kind === 'pay') return { kind: 'pay', id: segment, query };
  return { kind: 'return', id: segment, query };
}
