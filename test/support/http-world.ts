import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { vi } from 'vitest';
import type { PayRouter, PayRouterOptions } from '../../src/index.js';
import type { PaymentStore } from '../../src/store/types.js';
import { startWorld, storesOf } from './paid-server.js';

type Listener = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * A real node:http server on 127.0.0.1 whose listener is set later: `publicUrl` must name its port
 * before the router that serves it can be built.
 */
export async function listenLate() {
  let listener: Listener | undefined;
  const server = createServer((req, res) => {
    if (listener) listener(req, res);
    else {
      res.statusCode = 503;
      res.end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    use(next: Listener) {
      listener = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The sandbox world plus an HTTP server running the current router's httpHandler() at `publicUrl`. */
export async function startHttpWorld() {
  const world = await startWorld();
  const http = await listenLate();
  const publicUrl = `${http.origin}/payrouter`;
  return {
    ...world,
    origin: http.origin,
    publicUrl,
    /** A paid server whose router serves this world's HTTP server from now on. */
    makeHttpServer(options: Partial<PayRouterOptions> = {}) {
      const made = world.makeServer({ publicUrl, ...options });
      http.use(made.router.httpHandler());
      return made;
    },
    async close() {
      await http.close();
      await world.close();
    },
  };
}

export type HttpWorld = Awaited<ReturnType<typeof startHttpWorld>>;

/** The router's store, to look at intents the way the router sees them. */
export function storeOf(router: PayRouter): PaymentStore {
  const store = storesOf.get(router);
  if (!store) throw new Error('storeOf: this router was not made by the test world');
  return store;
}

/** A store that forwards to `base` and lets a test watch lookups or make writes fail. */
export function instrumentedStore(base: PaymentStore) {
  const gets: string[] = [];
  const state = { failUpdates: false };
  const store = new Proxy(base, {
    get(target, property) {
      if (property === 'get') {
        return (id: string) => {
          gets.push(id);
          return target.get(id);
        };
      }
      if (property === 'update' && state.failUpdates) {
        return async () => {
          throw new Error('store unavailable');
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store, gets, state };
}

export async function postForm(url: string, fields: Record<string, string>) {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
    redirect: 'manual',
  });
}

/** Resolve once `condition` holds (checked every few ms); fails the test after `timeoutMs`. */
export async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  await vi.waitFor(
    () => {
      if (!condition()) throw new Error(`timed out waiting for ${what}`);
    },
    { timeout: timeoutMs, interval: 5 },
  );
}
