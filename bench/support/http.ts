import { listenLate } from '../../test/support/http-world.js';

/**
 * A node:http server on 127.0.0.1 whose listener is set after it listens (the tests' own), with the
 * `publicUrl` a router mounted at /payrouter on it would have.
 */
export async function lateServer() {
  const server = await listenLate();
  return { ...server, publicUrl: `${server.origin}/payrouter` };
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
