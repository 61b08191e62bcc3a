import type { McpServer, RegisteredTool, ToolCallback } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { AnySchema, ZodRawShapeCompat } from '@modelcontextprotocol/sdk/server/zod-compat.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { ConfigError } from '../core/errors.js';
import { newOpaqueId } from '../core/ids.js';
import { consoleLogger, type Logger, redactingLogger } from '../core/logger.js';
import { formatMoney } from '../core/money/money.js';
import type { PaymentProvider } from '../core/provider.js';
import { type RouteDecision, routeCharge } from '../core/route/route.js';
import { ConfirmationLayer } from '../engine/confirmation/index.js';
import { type PayRouterOptions, resolveProviders, resolveSettings } from '../engine/options.js';
import {
  advertisedPrice,
  argumentParser,
  type PaidTool,
  parseFixedPrice,
  readPriceSpec,
} from '../engine/paid-tool.js';
import type { RouterCore } from '../engine/runtime.js';
import { createHttpHandler, type HttpHandler } from '../http/index.js';
import { memoryStore } from '../store/memory.js';
import type { PaymentStore } from '../store/types.js';
import { PaidCallFlow } from './call-flow.js';
import { CONFIRM_PAYMENT_TOOL, registerConfirmPaymentTool } from './confirm-payment-tool.js';
import type { ToolExtra } from './subject.js';
import type { PaidToolConfig } from './tool-config.js';

type RegisterTool = McpServer['registerTool'];
type AnyConfig = {
  description?: string;
  title?: string;
  inputSchema?: unknown;
  outputSchema?: unknown;
  _meta?: Record<string, unknown>;
  price?: unknown;
  providers?: unknown;
  [key: string]: unknown;
};
type AnyHandler = (...args: unknown[]) => CallToolResult | Promise<CallToolResult>;

/**
 * Makes MCP tools paid. Install on an McpServer; a `price` on a tool then routes each call to a
 * payment provider, collects, confirms, and runs the tool exactly once per payment.
 */
export class PayRouter {
  private readonly core: RouterCore;
  private readonly flow: PaidCallFlow;
  private readonly installed = new WeakMap<
    McpServer,
    { tools: Map<string, PaidTool>; register: RegisterTool }
  >();
  private readonly primary: McpServer;
  private readonly ownsStore: boolean;
  private closed = false;
  private httpListener: HttpHandler | undefined;

  constructor(server: McpServer, options: PayRouterOptions) {
    if (!options || typeof options !== 'object')
      throw new ConfigError('new PayRouter(server, options) needs options');
    const settings = resolveSettings(options);
    const logger: Logger = options.logger ? redactingLogger(options.logger) : consoleLogger();
    const providers = resolveProviders(options.providers, logger);
    const providerById = new Map<string, PaymentProvider>(providers.map((p) => [p.id, p]));
    this.ownsStore = options.store === undefined;
    const store: PaymentStore = options.store ?? memoryStore();
    // With publicUrl, webhooks and return redirects reach us: polling is only the fallback for them.
    const pushed = (id: string) => {
      const caps = providerById.get(id)?.capabilities;
      return settings.publicUrl !== undefined && caps !== undefined && (caps.webhooks || caps.returnRedirect);
    };
    const confirmation = new ConfirmationLayer({
      store,
      providers: providerById,
      logger,
      pushed,
      ...(options.confirmation ?? {}),
    });
    this.core = {
      settings,
      providers,
      providerById,
      store,
      confirmation,
      logger,
      hooks: options.hooks ?? {},
      subject: options.subject,
      instanceId: newOpaqueId('inst'),
      toolsOf: (s) => this.installed.get(s as McpServer)?.tools ?? new Map(),
    };
    this.flow = new PaidCallFlow(this.core);
    this.primary = server;
    this.install(server);
  }

  /**
   * Put this router on another McpServer (a Streamable HTTP server builds one per session). The
   * store, status cache, pollers and configuration are shared; nothing is duplicated.
   */
  install(server: McpServer): void {
    if (this.installed.has(server)) return;
    const register = server.registerTool.bind(server) as RegisterTool;
    const tools = new Map<string, PaidTool>();
    this.installed.set(server, { tools, register });
    const wrapped = ((name: string, config: AnyConfig, cb: AnyHandler) =>
      this.registerOn(server, name, config, cb)) as unknown as RegisterTool;
    // Replacing the instance's method keeps `server.registerTool` working exactly as documented.
    server.registerTool = wrapped;
    // Every flow can end in a payment-required result (a client without elicitation, a wait that
    // timed out), so confirm_payment is always there.
    registerConfirmPaymentTool(register, (paymentId, method, extra) =>
      this.flow.confirm(server, paymentId, method, extra),
    );
  }

  /** Register a paid tool on the server this router was created with, fully typed. */
  registerTool<
    OutputArgs extends ZodRawShapeCompat | AnySchema,
    InputArgs extends undefined | ZodRawShapeCompat | AnySchema = undefined,
  >(
    name: string,
    config: PaidToolConfig<OutputArgs, InputArgs>,
    cb: ToolCallback<InputArgs>,
  ): RegisteredTool {
    return this.registerOn(this.primary, name, config as unknown as AnyConfig, cb as unknown as AnyHandler);
  }

  /**
   * How a call would be routed: eligible providers in order and why each other one is excluded.
   * Pure; creates nothing. `client` defaults to a client without elicitation.
   */
  async explain(
    tool: string,
    args: Record<string, unknown> = {},
    context: { subject?: string; server?: McpServer } = {},
  ): Promise<RouteDecision> {
    const server = context.server ?? this.primary;
    const paid = this.core.toolsOf(server).get(tool);
    if (!paid) throw new ConfigError(`"${tool}" is not a paid tool on this server`);
    return this.flow.explain(context.server, paid, args, context.subject);
  }

  /**
   * A node request listener (also mountable in Express or Hono) serving the hosted pay pages,
   * the return pages providers redirect to, and provider webhooks, under `publicUrl`'s path.
   */
  httpHandler(): HttpHandler {
    if (!this.core.settings.publicUrl) {
      throw new ConfigError(
        'httpHandler() needs publicUrl: the public base URL where this handler is reachable',
      );
    }
    this.httpListener ??= createHttpHandler(this.internals);
    return this.httpListener;
  }

  /** Stop pollers and release what the router created (its default store, provider pools). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.core.confirmation.close();
    if (this.ownsStore) await this.core.store.close();
    await Promise.all(this.core.providers.map((p) => p.close?.().catch(() => {})));
  }

  /** Internal parts for the HTTP handler; not part of the public API. */
  get internals(): { core: RouterCore; flow: PaidCallFlow } {
    return { core: this.core, flow: this.flow };
  }

  private registerOn(server: McpServer, name: string, config: AnyConfig, cb: AnyHandler): RegisteredTool {
    const entry = this.installed.get(server);
    if (!entry) throw new ConfigError('Install the router on this server first: router.install(server)');
    const spec = readPriceSpec(name, config);
    const { price: _price, providers: _providers, ...sdkConfig } = config;
    if (spec === undefined)
      return (entry.register as unknown as (...a: unknown[]) => RegisteredTool)(name, sdkConfig, cb);
    if (name === CONFIRM_PAYMENT_TOOL)
      throw new ConfigError(`"${CONFIRM_PAYMENT_TOOL}" is reserved by payrouter`);

    const toolProviders = this.readToolProviders(name, config.providers);
    const fixedPrice = typeof spec === 'function' ? undefined : parseFixedPrice(name, spec);
    if (fixedPrice) {
      const decision = routeCharge({
        charge: fixedPrice,
        providers: this.core.providers,
        toolProviders,
        client: { form: false, url: false },
      });
      if (decision.eligible.length === 0) {
        const reasons = decision.excluded.map((e) => `${e.providerId}: ${e.reason}`).join('; ');
        throw new ConfigError(
          `Tool "${name}": no configured provider can take ${formatMoney(fixedPrice)} (${reasons}). Change the price or add a provider that accepts it.`,
        );
      }
    }
    const hasInputSchema = config.inputSchema !== undefined;
    const tool: PaidTool = {
      name,
      description: (config.title as string | undefined) ?? config.description ?? name,
      ...(fixedPrice ? { fixedPrice } : { priceFn: spec as PaidTool['priceFn'] }),
      ...(toolProviders ? { providers: toolProviders } : {}),
      hasInputSchema,
      hasOutputSchema: config.outputSchema !== undefined,
      parseArgs: argumentParser(config.inputSchema),
      handler: (args, extra) => (hasInputSchema ? cb(args, extra) : cb(extra)),
    };
    entry.tools.set(name, tool);
    const handler = hasInputSchema
      ? (args: Record<string, unknown>, extra: ToolExtra) => this.flow.handleCall(server, tool, args, extra)
      : (extra: ToolExtra) => this.flow.handleCall(server, tool, {}, extra);
    const meta = {
      ...(config._meta ?? {}),
      price: advertisedPrice(fixedPrice),
      'payrouter/price': advertisedPrice(fixedPrice),
    };
    const registered = (entry.register as unknown as (...a: unknown[]) => RegisteredTool)(
      name,
      { ...sdkConfig, _meta: meta },
      handler,
    );
    const remove = registered.remove.bind(registered);
    registered.remove = () => {
      entry.tools.delete(name);
      remove();
    };
    return registered;
  }

  private readToolProviders(name: string, value: unknown): string[] | undefined {
    if (value === undefined) return undefined;
    if (!Array.isArray(value) || value.some((v) => typeof v !== 'string') || value.length === 0) {
      throw new ConfigError(`Tool "${name}": providers must be a non-empty list of provider ids`);
    }
    for (const id of value as string[]) {
      if (!this.core.providerById.has(id)) {
        throw new ConfigError(
          `Tool "${name}": unknown provider "${id}" in providers; configured: ${[...this.core.providerById.keys()].join(', ')}`,
        );
      }
    }
    return value as string[];
  }
}
