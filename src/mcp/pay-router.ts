import { McpServer, type RegisteredTool, type ToolCallback } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { AnySchema, ZodRawShapeCompat } from '@modelcontextprotocol/sdk/server/zod-compat.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import { looksLikeIntentId, newOpaqueId } from '../core/ids.js';
import type { ToolResult } from '../core/intent/record.js';
import type { PaymentStatus } from '../core/intent/status.js';
import { consoleLogger, type Logger, namespaced, redactingLogger } from '../core/logger.js';
import { formatMoney, type Money } from '../core/money/money.js';
import type { PaymentProvider } from '../core/provider.js';
import { type RouteDecision, routeCharge } from '../core/route/route.js';
import { ConfirmationLayer } from '../engine/confirmation/index.js';
import { createPaymentDesk } from '../engine/desk.js';
import type { Ledger } from '../engine/ledger/ledger.js';
import { type OperatorResult, operatorCancel, operatorRefund } from '../engine/ledger/operator.js';
import { usageParts, watchEnds } from '../engine/ledger/wiring.js';
import { parseRules, toolLimitsSchema } from '../engine/limits/limits.js';
import {
  engineOptionsSchema,
  type ProviderConfigMap,
  parseOptions,
  resolveProviders,
  resolveSettings,
} from '../engine/options.js';
import { announcePaid } from '../engine/paid-events.js';
import {
  advertisedPrice,
  argumentCodec,
  type PaidTool,
  parseFixedPrice,
  readPriceSpec,
} from '../engine/paid-tool.js';
import type { CallContext } from '../engine/pipeline/context.js';
import { PaidCallPipeline } from '../engine/pipeline/pipeline.js';
import { RefundSweep } from '../engine/refund-sweep.js';
import type { RouterCore } from '../engine/runtime.js';
import { timedProvider } from '../engine/telemetry/provider-metrics.js';
import { createHttpHandler, type HttpHandler } from '../http/index.js';
import { memoryStore } from '../store/memory.js';
import type { PaymentStore } from '../store/types.js';
import { clientSupport } from './client-support.js';
import { CONFIRM_PAYMENT_TOOL, registerConfirmPaymentTool } from './confirm-payment-tool.js';
import { liveInteraction, resultOnlyInteraction } from './interaction/live.js';
import { type AnyToolConfig, type PreparedTool, setRouterInternals } from './internal.js';
import { present } from './present.js';
import { progressReporter } from './progress.js';
import { resolveSubject, type SubjectResolver, type ToolExtra } from './subject.js';
import type { PaidRegistration, PaidToolConfig } from './tool-config.js';
import { tracedCall } from './traced-call.js';
import { credentialOf } from './x402.js';

type RegisterTool = McpServer['registerTool'];

const payRouterOptionsSchema = engineOptionsSchema.extend({
  /** Who pays, when the default (auth subject, else session, else connection) does not fit. */
  subject: z.custom<SubjectResolver>((v) => typeof v === 'function', 'must be a function').optional(),
  /**
   * The price appended to paid tools' descriptions, so the model can tell the user before calling
   * ("Write a report. Costs $0.25."). `false` turns it off; a function writes the sentence
   * (`undefined` money: a dynamic price). Default true.
   */
  priceInDescription: z
    .union([
      z.boolean(),
      z.custom<(price: Money | undefined) => string>((v) => typeof v === 'function', 'must be a function'),
    ])
    .optional(),
  /**
   * The server key that seals `requestState` for protocol 2026-07-28 clients (`payrouter/mcp-v2`):
   * at least 32 bytes, the same on every instance, kept secret. Without it each process makes a
   * random one, which only works while one process serves every round of a call.
   */
  requestStateKey: z
    // z.custom, not z.instanceof: the declarations then name only types every zod 4.1+ has
    // (z.ZodInstanceOf is newer) and a plain Uint8Array (not TypeScript 5.7's Uint8Array<ArrayBuffer>).
    .union([
      z.string(),
      z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'must be a string or a Uint8Array'),
    ])
    .refine(
      (key) => (typeof key === 'string' ? Buffer.byteLength(key) : key.byteLength) >= 32,
      'must be at least 32 bytes (e.g. 64 hex characters from `openssl rand -hex 32`), the same on every instance',
    )
    .optional(),
});

/**
 * Everything `new PayRouter(options)` takes: one strict schema, each option with its default.
 * `ProviderId`: the ids of the provider instances in `providers`, inferred from them (literal for
 * the built-in providers; `string` for the mapping form or providers whose id is a `string`).
 */
export type PayRouterOptions<ProviderId extends string = string> = Omit<
  z.input<typeof payRouterOptionsSchema>,
  'providers'
> & {
  /** Payment providers, in preference order: instances, or PayMCP's `{ walleot: {...}, stripe: {...} }`. Required. */
  providers: readonly PaymentProvider<ProviderId>[] | ProviderConfigMap;
};
type AnyConfig = AnyToolConfig;
type AnyHandler = (...args: unknown[]) => CallToolResult | Promise<CallToolResult>;

/**
 * An McpServer after `router.install`: `registerTool` also takes `price` and `providers` (the ids
 * of the router's providers, `ProviderId`).
 */
// Ours first: an intersection's overloads are tried in order, and only ours types a dynamic price's arguments.
export type PaidMcpServer<S extends McpServer = McpServer, ProviderId extends string = string> = {
  registerTool: PaidRegistration<ProviderId>['registerTool'] & S['registerTool'];
} & S;

export interface InstallOptions {
  /**
   * The server was built with `capabilities.tools`, so the SDK installed its tool handlers at
   * construction. Say so here; tools registered on it before `install` are not paid.
   */
  toolsCapability?: boolean;
}

/**
 * Makes MCP tools paid. `router.install(server)` puts it on an McpServer; a `price` on a tool then
 * routes each call to a payment provider, collects, confirms, and runs the tool exactly once per
 * payment.
 *
 * @example
 * const router = new PayRouter({ providers: [new WalleotProvider({ apiKey })] });
 * const server = router.install(new McpServer({ name: 'tools', version: '1.0.0' }));
 * server.registerTool('report', { price: { amount: '0.25', currency: 'USD' } }, async () => ({
 *   content: [{ type: 'text', text: 'done' }],
 * }));
 *
 * `ProviderId` is inferred from the provider instances: with `[walleot, stripe]` a tool's
 * `providers` takes only `'walleot'` and `'stripe'`.
 */
export class PayRouter<ProviderId extends string = string> {
  readonly #core: RouterCore;
  readonly #pipeline: PaidCallPipeline;
  readonly #refundSweep: RefundSweep;
  readonly #subject: SubjectResolver | undefined;
  readonly #installed = new WeakMap<McpServer, { tools: Map<string, PaidTool>; register: RegisterTool }>();
  readonly #primary: McpServer | undefined;
  readonly #ownsStore: boolean;
  readonly #priceInDescription: PayRouterOptions['priceInDescription'];
  /** Connections (one McpServer each) that have sent a machine payment. */
  readonly #machineClients = new WeakSet<McpServer>();
  #closed = false;
  #httpListener: HttpHandler | undefined;
  #toolLimits = false;
  readonly #unwatch: () => void;

  /** The router alone; put it on each server with `install`. */
  constructor(options: PayRouterOptions<ProviderId>);
  /** Shorthand for `new PayRouter(options)` and `router.install(server)`. */
  constructor(server: McpServer, options: PayRouterOptions<ProviderId>);
  constructor(first: McpServer | PayRouterOptions<ProviderId>, second?: PayRouterOptions<ProviderId>) {
    const server = first instanceof McpServer ? first : undefined;
    const given = server ? second : first;
    if (!given || typeof given !== 'object')
      throw new ConfigError('new PayRouter(options) needs options: { providers: [...] }');
    const options = parseOptions(payRouterOptionsSchema, given);
    const settings = resolveSettings(options);
    const logger: Logger = options.logger ? redactingLogger(options.logger) : consoleLogger();
    const providers = resolveProviders(options.providers, logger, settings);
    this.#ownsStore = options.store === undefined;
    const store: PaymentStore = options.store ?? memoryStore();
    const usage = usageParts(options, store, logger);
    // With telemetry, every provider request is timed and its failures counted.
    const { telemetry } = usage;
    const providerById = new Map<string, PaymentProvider>(
      providers.map((p) => [p.id, telemetry ? timedProvider(telemetry, p) : p]),
    );
    // With publicUrl, webhooks and return redirects reach us: polling is only the fallback for them.
    const pushed = (id: string) => {
      const caps = providerById.get(id)?.capabilities;
      return settings.publicUrl !== undefined && caps !== undefined && (caps.webhooks || caps.returnRedirect);
    };
    const confirmation = new ConfirmationLayer({
      store,
      providers: providerById,
      logger: namespaced(logger, 'confirmation'),
      pushed,
      telemetry,
      // Bound late: the core that announces is built around this layer.
      onPaid: (intent) => announcePaid(this.#core, intent),
      ...(options.confirmation ?? {}),
    });
    this.#core = {
      ...usage,
      settings,
      providers,
      providerById,
      store,
      confirmation,
      logger,
      hooks: options.hooks ?? {},
      instanceId: newOpaqueId('inst'),
      toolsOf: (s) => this.#installed.get(s as McpServer)?.tools ?? new Map(),
    };
    this.#subject = options.subject;
    this.#priceInDescription = options.priceInDescription;
    this.#pipeline = new PaidCallPipeline(this.#core);
    this.#refundSweep = new RefundSweep(this.#core);
    setRouterInternals(this, {
      core: this.#core,
      pipeline: this.#pipeline,
      hasSubjectOption: options.subject !== undefined,
      requestStateKey: readRequestStateKey(options.requestStateKey),
      prepareTool: (name, config, invoke) => this.#prepareTool(name, config, invoke),
    });
    const routerLimits = usage.limits.applies({ name: '' });
    this.#unwatch = watchEnds(this.#core, () => routerLimits || this.#toolLimits);
    this.#primary = server;
    if (server) this.install(server);
  }

  /**
   * Put this router on an McpServer (a Streamable HTTP server builds one per session) and get it
   * back typed so that `registerTool` takes `price` and `providers`. The store, status cache,
   * pollers and configuration are shared; nothing is duplicated. Install before registering tools:
   * a tool registered earlier would run free, so that is an error.
   */
  install<S extends McpServer>(server: S, options: InstallOptions = {}): PaidMcpServer<S, ProviderId> {
    if (this.#installed.has(server)) return server as PaidMcpServer<S, ProviderId>;
    if (options.toolsCapability !== true) {
      try {
        server.server.assertCanSetRequestHandler('tools/call');
      } catch {
        throw new ConfigError(
          'router.install(server) must come before any server.registerTool: a tool registered before the router would run free. Install first, then register. (A server built with capabilities.tools has tool handlers from the start: say so with install(server, { toolsCapability: true }).)',
        );
      }
    }
    const register = server.registerTool.bind(server) as RegisterTool;
    const tools = new Map<string, PaidTool>();
    this.#installed.set(server, { tools, register });
    const wrapped = ((name: string, config: AnyConfig, cb: AnyHandler) =>
      this.#registerOn(server, name, config, cb)) as unknown as RegisterTool;
    // Replacing the instance's method keeps `server.registerTool` working exactly as documented.
    server.registerTool = wrapped;
    // Every flow can end in a payment-required result (a client without elicitation, a wait that
    // timed out), so confirm_payment is always there.
    registerConfirmPaymentTool(register, async (paymentId, method, extra) => {
      const ctx = this.#context(server, extra, CONFIRM_PAYMENT_TOOL);
      const outcome = await tracedCall(this.#core, CONFIRM_PAYMENT_TOOL, ctx, (traced) =>
        this.#pipeline.confirm(tools, paymentId, method, traced),
      );
      const tool = 'intent' in outcome ? tools.get(outcome.intent.binding.tool) : undefined;
      return present(this.#core, tool ?? { name: CONFIRM_PAYMENT_TOOL, hasOutputSchema: false }, outcome);
    });
    return server as PaidMcpServer<S, ProviderId>;
  }

  /** Register a paid tool on the server given to `new PayRouter(server, options)`, fully typed. */
  registerTool<
    OutputArgs extends ZodRawShapeCompat | AnySchema,
    InputArgs extends undefined | ZodRawShapeCompat | AnySchema = undefined,
  >(
    name: string,
    config: PaidToolConfig<OutputArgs, InputArgs, ProviderId>,
    cb: ToolCallback<InputArgs>,
  ): RegisteredTool {
    if (!this.#primary)
      throw new ConfigError(
        'router.registerTool needs new PayRouter(server, options); else use router.install(server).registerTool',
      );
    return this.#registerOn(this.#primary, name, config as unknown as AnyConfig, cb as unknown as AnyHandler);
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
    const server = context.server ?? this.#primary;
    const paid = server ? this.#core.toolsOf(server).get(tool) : undefined;
    if (!paid) throw new ConfigError(`"${tool}" is not a paid tool on this server`);
    const client = context.server ? clientSupport(context.server) : { form: false, url: false };
    return this.#pipeline.explain(paid, args, context.subject, client);
  }

  /**
   * A node request listener (also mountable in Express or Hono) serving the hosted pay pages,
   * the return pages providers redirect to, and provider webhooks, under `publicUrl`'s path.
   */
  httpHandler(): HttpHandler {
    if (!this.#core.settings.publicUrl) {
      throw new ConfigError(
        'httpHandler() needs publicUrl: the public base URL where this handler is reachable',
      );
    }
    this.#httpListener ??= createHttpHandler(createPaymentDesk(this.#core));
    return this.#httpListener;
  }

  /**
   * Ask the provider about a payment now and record what it says (support tooling, scripts).
   * Returns the payment's status, or undefined for an unknown payment id.
   */
  async checkPayment(paymentId: string): Promise<PaymentStatus | undefined> {
    if (!looksLikeIntentId(paymentId)) return undefined;
    const checked = await this.#core.confirmation.check(paymentId, { fresh: true });
    return checked?.status;
  }

  /**
   * Every payment, free call, run, refund and cancel, per subject, in minor units:
   * `ledger.list({ subject, since })`, and `ledger.on('entry', fn)` for your own storage.
   */
  get ledger(): Pick<Ledger, 'list' | 'on' | 'retentionMs'> {
    return this.#core.ledger!;
  }

  /**
   * Refund a paid payment at its provider (support cases); recorded in the ledger, and its budget
   * comes back to the payer's limits. Idempotent: `changed` is false when it was refunded before.
   */
  refund(paymentId: string, options: { reason?: string } = {}): Promise<OperatorResult> {
    return operatorRefund(this.#core, paymentId, options);
  }

  /** Cancel an unpaid payment (and its provider payment where the provider can). Idempotent. */
  cancel(paymentId: string, options: { reason?: string } = {}): Promise<OperatorResult> {
    return operatorCancel(this.#core, paymentId, options);
  }

  /** Stop pollers and release what the router created (its default store, provider pools). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unwatch();
    this.#refundSweep.close();
    this.#core.confirmation.close();
    if (this.#ownsStore) await this.#core.store.close();
    await Promise.all(this.#core.providers.map((p) => p.close?.().catch(() => {})));
  }

  #context(server: McpServer, extra: ToolExtra, tool: string): CallContext {
    const subject = resolveSubject(server, extra, this.#subject, tool);
    // x402 declares no capability: a connection that has sent a payment pays by itself from then on.
    const credential = credentialOf(extra._meta as Record<string, unknown> | undefined);
    if (credential !== undefined) this.#machineClients.add(server);
    // Spelled out: V8 gives `{ ...x, key }` a hidden class of its own per object (~0.3 KB), and a
    // call waiting for its payment holds this one.
    const { form, url } = clientSupport(server);
    const client = { form, url, machine: this.#machineClients.has(server) };
    const settings = this.#core.settings;
    const interaction =
      settings.flow === 'two_step' || (!client.form && !client.url)
        ? resultOnlyInteraction
        : liveInteraction(server, extra, settings, this.#core.logger);
    return {
      subject,
      anonymous: !subject.startsWith('user:') && !subject.startsWith('custom:'),
      client,
      interaction,
      deadline: Date.now() + settings.callBudgetMs,
      signal: extra.signal,
      extra,
      ...(credential === undefined ? {} : { credential }),
      progress: progressReporter(extra),
    };
  }

  #registerOn(server: McpServer, name: string, config: AnyConfig, cb: AnyHandler): RegisteredTool {
    const entry = this.#installed.get(server);
    if (!entry) throw new ConfigError('Install the router on this server first: router.install(server)');
    const hasInputSchema = config.inputSchema !== undefined;
    const prepared = this.#prepareTool(name, config, (args, extra, payment) => {
      const withPayment = { ...(extra as ToolExtra), payment };
      return (hasInputSchema ? cb(args, withPayment) : cb(withPayment)) as ToolResult | Promise<ToolResult>;
    });
    const register = entry.register as unknown as (...a: unknown[]) => RegisteredTool;
    if (!prepared.paid) return register(name, prepared.sdkConfig, cb);
    const { tool } = prepared;
    entry.tools.set(name, tool);
    const handler = async (...params: unknown[]) => {
      const args = (hasInputSchema ? params[0] : {}) as Record<string, unknown>;
      const extra = (hasInputSchema ? params[1] : params[0]) as ToolExtra;
      const outcome = await tracedCall(this.#core, name, this.#context(server, extra, name), (ctx) =>
        this.#pipeline.call(tool, args, ctx),
      );
      return present(this.#core, tool, outcome);
    };
    const registered = register(name, prepared.sdkConfig, handler);
    const remove = registered.remove.bind(registered);
    registered.remove = () => {
      entry.tools.delete(name);
      remove();
    };
    return registered;
  }

  /** Read a tool config: unpriced, or its price, providers, argument codec and the config the SDK gets. */
  #prepareTool(name: string, config: AnyConfig, invoke: PaidTool['handler']): PreparedTool {
    const spec = readPriceSpec(name, config);
    const { price: _price, providers: _providers, limits: rawLimits, ...sdkConfig } = config;
    if (spec === undefined) return { paid: false, sdkConfig };
    if (name === CONFIRM_PAYMENT_TOOL)
      throw new ConfigError(`"${CONFIRM_PAYMENT_TOOL}" is reserved by payrouter`);

    const toolProviders = this.#readToolProviders(name, config.providers);
    const fixedPrice = typeof spec === 'function' ? undefined : parseFixedPrice(name, spec);
    if (fixedPrice) {
      const decision = routeCharge({
        charge: fixedPrice,
        providers: this.#core.providers,
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
    const toolLimits = this.#readToolLimits(name, rawLimits);
    const codec = argumentCodec(name, config.inputSchema);
    const tool: PaidTool = {
      name,
      description: (config.title as string | undefined) ?? config.description ?? name,
      ...(fixedPrice ? { fixedPrice } : { priceFn: spec as PaidTool['priceFn'] }),
      ...(toolProviders ? { providers: toolProviders } : {}),
      ...(toolLimits ? { limits: toolLimits } : {}),
      hasInputSchema: config.inputSchema !== undefined,
      hasOutputSchema: config.outputSchema !== undefined,
      wireForm: codec.wireForm,
      parseWire: codec.parseWire,
      handler: invoke,
    };
    const meta = {
      ...(config._meta ?? {}),
      price: advertisedPrice(fixedPrice),
      'payrouter/price': advertisedPrice(fixedPrice),
    };
    return {
      paid: true,
      tool,
      sdkConfig: { ...sdkConfig, ...this.#describePrice(config.description, fixedPrice), _meta: meta },
    };
  }

  #readToolLimits(name: string, raw: unknown) {
    if (raw === undefined) return undefined;
    const parsed = toolLimitsSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ConfigError(
        `Tool "${name}": limits.${issue?.path.join('.') ?? ''} ${issue?.message ?? 'invalid'} (limits takes spend, calls and free)`,
      );
    }
    const rules = parseRules(`Tool "${name}"`, parsed.data);
    this.#core.limits?.checkTool(name, rules);
    this.#toolLimits = true;
    return rules;
  }

  /** The model sees the price only in the description: "Write a report. Costs $0.25." */
  #describePrice(description: string | undefined, price: Money | undefined): { description?: string } {
    const option = this.#priceInDescription ?? true;
    if (option === false) return description === undefined ? {} : { description };
    const sentence =
      typeof option === 'function'
        ? option(price)
        : price
          ? `Costs ${formatMoney(price)}.`
          : 'Paid: the price depends on the arguments and is shown before paying.';
    if (!sentence) return description === undefined ? {} : { description };
    const base = description?.trim() ?? '';
    return { description: base === '' ? sentence : `${/[.!?]$/.test(base) ? base : `${base}.`} ${sentence}` };
  }

  #readToolProviders(name: string, value: unknown): string[] | undefined {
    if (value === undefined) return undefined;
    if (!Array.isArray(value) || value.some((v) => typeof v !== 'string') || value.length === 0) {
      throw new ConfigError(`Tool "${name}": providers must be a non-empty list of provider ids`);
    }
    for (const id of value as string[]) {
      if (!this.#core.providerById.has(id)) {
        throw new ConfigError(
          `Tool "${name}": unknown provider "${id}" in providers; configured: ${[...this.#core.providerById.keys()].join(', ')}`,
        );
      }
    }
    return value as string[];
  }
}

/** The requestState key as bytes (the options schema checked it has at least 32). */
function readRequestStateKey(key: string | Uint8Array | undefined): Uint8Array | undefined {
  if (key === undefined) return undefined;
  return typeof key === 'string' ? new TextEncoder().encode(key) : new Uint8Array(key);
}
