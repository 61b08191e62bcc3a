import type { Logger } from '../core/logger.js';
import type { PaymentProvider } from '../core/provider.js';
import type { PaymentStore } from '../store/types.js';
import type { ConfirmationLayer } from './confirmation/index.js';
import type { Ledger } from './ledger/ledger.js';
import type { UsageLimits } from './limits/limits.js';
import type { PayRouterHooks, ResolvedSettings } from './options.js';
import type { PaidTool } from './paid-tool.js';
import type { Telemetry } from './telemetry/telemetry.js';

/** What every part of one PayRouter shares: settings, providers, store, confirmation, tools. */
export interface RouterCore {
  settings: ResolvedSettings;
  providers: readonly PaymentProvider[];
  providerById: ReadonlyMap<string, PaymentProvider>;
  store: PaymentStore;
  confirmation: ConfirmationLayer;
  logger: Logger;
  hooks: PayRouterHooks;
  /** Spend caps, call quotas and free allowances (none: no limits beyond the open ones). */
  limits?: UsageLimits;
  /** Where payments, free calls, runs, refunds and cancels are recorded. */
  ledger?: Ledger;
  /** Spans and metrics (absent or disabled: nothing is recorded). */
  telemetry?: Telemetry;
  /** Names this process in run leases. */
  instanceId: string;
  /** The priced tools of each installed McpServer (one per connection). */
  toolsOf(server: object): ReadonlyMap<string, PaidTool>;
}

/** Run a user hook without letting it break a paid call; failures are logged. */
export async function runHook<E>(
  core: RouterCore,
  name: string,
  hook: ((event: E) => unknown) | undefined,
  event: E,
) {
  if (!hook) return;
  try {
    await hook(event);
  } catch (error) {
    core.logger.warn(`hook ${name} threw`, { error });
  }
}
