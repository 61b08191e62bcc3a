import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

type Listener = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * A node:http server on 127.0.0.1 whose listener is set after it listens: a router's `publicUrl`
 * must name the port before the router (and so its httpHandler) exists.
 */
export async function lateServer() {
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
    publicUrl: `${origin}/payrouter`,
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

/** Resolve once `condition` holds, checked every few ms; throws after `timeoutMs`. */
export async function until(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The intent id at the end of a hosted pay page URL (`…/pay/:id`). */
export function intentIdFromPayUrl(url: string): string {
  const id = /\/pay\/([^/?#]+)/.exec(url)?.[1];
  if (id === undefined) throw new Error(`not a pay page URL: ${url}`);
  return id;
}
