// The router's core for unit tests of engine steps (no MCP server, no client): a memoryStore, the
// confirmation layer wired as the router wires it, settings resolved from the given options.
import { silentLogger } from '../../src/core/logger.js';
import type { PaymentProvider } from '../../src/core/provider.js';
import { ConfirmationLayer } from '../../src/engine/confirmation/index.js';
import { type EngineOptions, resolveSettings } from '../../src/engine/options.js';
import { announcePaid } from '../../src/engine/paid-events.js';
import type { RouterCore } from '../../src/engine/runtime.js';
import { memoryStore } from '../../src/store/memory.js';

/** A RouterCore and a `close` for afterEach; `pendingTtlMs` 1 ms unless told (status reads not cached). */
export function engineRuntime(
  providers: PaymentProvider[],
  options: { timeouts?: EngineOptions['timeouts']; pendingTtlMs?: number } = {},
): { rt: RouterCore; store: ReturnType<typeof memoryStore>; close: () => void } {
  const store = memoryStore();
  const providerById = new Map(providers.map((p) => [p.id, p]));
  const confirmation = new ConfirmationLayer({
    store,
    providers: providerById,
    logger: silentLogger,
    pendingTtlMs: options.pendingTtlMs ?? 1,
    // As the router wires it: the writer that made a payment paid announces it.
    onPaid: (intent) => announcePaid(rt, intent),
  });
  const rt: RouterCore = {
    settings: resolveSettings({ providers, ...(options.timeouts ? { timeouts: options.timeouts } : {}) }),
    providers,
    providerById,
    store,
    confirmation,
    logger: silentLogger,
    hooks: {},
    instanceId: 'inst_test',
    toolsOf: () => new Map(),
  };
  return { rt, store, close: () => confirmation.close() };
}
