import { randomBytes } from 'node:crypto';
import {
  type CallToolResult,
  CLIENT_CAPABILITIES_META_KEY,
  type InputRequiredResult,
  inputRequired,
  type McpServer,
  PROTOCOL_VERSION_META_KEY,
  ProtocolError,
  ProtocolErrorCode,
  type RegisteredTool,
  type ServerContext,
} from '@modelcontextprotocol/server';
import { ConfigError, PayRouterError } from '../core/errors.js';
import { looksLikeIntentId, newOpaqueId } from '../core/ids.js';
import type { IntentRecord } from '../core/intent/record.js';
import { liveAttempt } from '../core/intent/transitions.js';
import type { ClientSupport } from '../core/route/route.js';
import { operatorCancel } from '../engine/ledger/operator.js';
import type { CallExtra, PaidTool } from '../engine/paid-tool.js';
import type { CallContext, Interaction, PresentedCredential } from '../engine/pipeline/context.js';
import type { InputAsk, Outcome } from '../engine/pipeline/outcome.js';
import { isAnonymousSubject } from '../engine/pipeline/pipeline.js';
import { CONFIRM_PAYMENT_CONFIG, CONFIRM_PAYMENT_TOOL } from '../mcp/confirm-payment-tool.js';
import { resultOnlyInteraction } from '../mcp/interaction/live.js';
import { type AnyToolConfig, type RouterInternals, routerInternals } from '../mcp/internal.js';
import type { PayRouter } from '../mcp/pay-router.js';
import { PAYMENT_META_KEY } from '../mcp/payment-result.js';
import { pendingInfo, presentResult } from '../mcp/present.js';
import { tracedCall } from '../mcp/traced-call.js';
import { credentialOf } from '../mcp/x402.js';
import {
  inputRequestsFor,
  inputRequiredInteraction,
  type RoundAnswers,
  readChoice,
  readDelivery,
} from './interaction.js';
import { type StateRefusal, stateRefusal } from './refusals.js';
import { type RequestStatePayload, RequestStateSealer, type TaskIdPayload } from './request-state.js';
import {
  declaresTasks,
  TASK_METHODS,
  TASKS_EXTENSION,
  type TaskJson,
  taskOf,
  taskParamsSchema,
} from './tasks.js';
import type { PaidMcpServerV2 } from './types.js';

/** Who pays on a v2 request, when the default (auth `sub`, else session, else the request's payment) does not fit. */
export type SubjectResolverV2 = (ctx: ServerContext) => string | undefined;

export interface InstallV2Options {
  /** Who pays; return undefined to fall back to the default rule. Required when the router has a `subject` option (that one reads a 1.x `extra`). */
  subject?: SubjectResolverV2;
  /** As `router.install`: the server was built with `capabilities.tools` on purpose. */
  toolsCapability?: boolean;
  /**
   * Serve the Tasks extension (`io.modelcontextprotocol/tasks`: `tasks/get`, `tasks/update`,
   * `tasks/cancel`) on this server, so that a paid call whose payer accepted the link becomes a
   * task instead of a held request, for clients that declare the extension. Default true; false
   * leaves the tasks methods to you.
   */
  tasks?: boolean;
}

/** How long a sealed requestState stays valid: enough to answer a question, short enough not to linger. */
const REQUEST_STATE_TTL_MS = 10 * 60 * 1000;
/** Kept a little longer than the state itself, so a redeemed state stays redeemed until it expires. */
const REDEEMED_MARGIN_MS = 60 * 1000;

/** What every v2 server of one router shares. */
interface V2Router {
  internals: RouterInternals;
  sealer: RequestStateSealer;
  installed: WeakMap<McpServer, Map<string, PaidTool>>;
}

const v2Routers = new WeakMap<object, V2Router>();

function v2RouterOf(router: object): V2Router {
  let v2 = v2Routers.get(router);
  if (v2) return v2;
  const internals = routerInternals(router);
  if (!internals)
    throw new ConfigError(
      'installV2(router, server): router must be a PayRouter from the same copy of payrouter as payrouter/mcp-v2 (import both the same way, both ESM or both CJS)',
    );
  let key = internals.requestStateKey;
  if (key === undefined) {
    key = randomBytes(32);
    internals.core.logger.warn(
      'requestStateKey is not set: payrouter/mcp-v2 made a random key for this process. Input-required rounds then only work while one process serves every round of a call; set requestStateKey (the same secret of at least 32 bytes on every instance) in production.',
    );
  }
  v2 = { internals, sealer: new RequestStateSealer(key), installed: new WeakMap() };
  v2Routers.set(router, v2);
  return v2;
}

/** The extra a paid run hands the v2 handler: its own ServerContext. */
const contexts = new WeakMap<CallExtra, ServerContext>();

/**
 * Put a PayRouter on a v2 `McpServer` (`@modelcontextprotocol/server`) and get it back typed so
 * that `registerTool` takes `price` and `providers`. The same router (options, store, providers,
 * pages) can serve 1.x servers through `router.install` at the same time. With
 * `createMcpHandler` the factory runs for every request: install on each server it builds.
 */
export function installV2<S extends McpServer, ProviderId extends string = string>(
  router: PayRouter<ProviderId>,
  server: S,
  options: InstallV2Options = {},
): PaidMcpServerV2<S, ProviderId> {
  const v2 = v2RouterOf(router);
  if (v2.installed.has(server)) return server as PaidMcpServerV2<S, ProviderId>;
  const { internals } = v2;
  if (internals.hasSubjectOption && options.subject === undefined)
    throw new ConfigError(
      "installV2(router, server): the router's subject option reads a 1.x extra, which v2 servers do not have. Pass installV2(router, server, { subject: (ctx) => ... }) to say who pays on v2 requests.",
    );
  if (options.toolsCapability !== true) {
    try {
      server.server.assertCanSetRequestHandler('tools/call');
    } catch {
      throw new ConfigError(
        'installV2(router, server) must come before any server.registerTool: a tool registered before the router would run free. Install first, then register. (A server built with capabilities.tools has tool handlers from the start: say so with installV2(router, server, { toolsCapability: true }).)',
      );
    }
  }
  const register = server.registerTool.bind(server) as unknown as RegisterAny;
  const tools = new Map<string, PaidTool>();
  v2.installed.set(server, tools);
  const layer = new V2Layer(v2, server, options);

  server.registerTool = ((name: string, config: AnyToolConfig, cb: HandlerAny) => {
    const hasInputSchema = config.inputSchema !== undefined;
    const prepared = internals.prepareTool(name, config, (args, extra, payment) => {
      const ctx = contexts.get(extra);
      const withPayment = { ...(ctx ?? {}), payment };
      return (hasInputSchema ? cb(args, withPayment) : cb(withPayment)) as CallToolResult;
    });
    if (!prepared.paid) return register(name, prepared.sdkConfig, cb);
    const { tool } = prepared;
    tools.set(name, tool);
    const registered = register(name, prepared.sdkConfig, async (...params: unknown[]) => {
      const args = (hasInputSchema ? params[0] : {}) as Record<string, unknown>;
      const ctx = (hasInputSchema ? params[1] : params[0]) as ServerContext;
      return layer.call(tool, args, ctx);
    });
    const remove = registered.remove.bind(registered);
    registered.remove = () => {
      tools.delete(name);
      remove();
    };
    return registered;
  }) as unknown as S['registerTool'];

  if (options.tasks !== false) {
    const low = server.server;
    for (const method of TASK_METHODS) {
      try {
        low.assertCanSetRequestHandler(method);
      } catch {
        throw new ConfigError(
          `installV2(router, server): this server already handles ${method}. payrouter serves the Tasks extension itself; pass installV2(router, server, { tasks: false }) to keep your own.`,
        );
      }
    }
    const params = { params: taskParamsSchema };
    low.setRequestHandler('tasks/get', params, (p, ctx) => layer.getTask(tools, p.taskId, ctx));
    low.setRequestHandler('tasks/update', params, (p, ctx) => layer.updateTask(tools, p.taskId, ctx));
    low.setRequestHandler('tasks/cancel', params, (p, ctx) => layer.cancelTask(tools, p.taskId, ctx));
    low.registerCapabilities({ extensions: { [TASKS_EXTENSION]: {} } });
  }

  register(CONFIRM_PAYMENT_TOOL, CONFIRM_PAYMENT_CONFIG, async (...params: unknown[]) => {
    const { payment_id, method } = params[0] as { payment_id: string; method: string | null };
    const ctx = params[1] as ServerContext;
    return layer.confirm(tools, payment_id, method ?? undefined, ctx);
  });
  return server as PaidMcpServerV2<S, ProviderId>;
}

type HandlerAny = (...args: unknown[]) => unknown;
type RegisterAny = (name: string, config: Record<string, unknown>, cb: HandlerAny) => RegisteredTool;

/** Who is calling: a known payer, or a stateless anonymous caller known only by the payment it names. */
type Caller = { kind: 'known'; subject: string } | { kind: 'stateless' };

class V2Layer {
  constructor(
    private readonly v2: V2Router,
    private readonly server: McpServer,
    private readonly options: InstallV2Options,
  ) {}

  get #rt() {
    return this.v2.internals.core;
  }

  async call(
    tool: PaidTool,
    args: Record<string, unknown>,
    ctx: ServerContext,
  ): Promise<CallToolResult | InputRequiredResult> {
    const caller = this.#caller(ctx);
    const client = this.#client(ctx);
    // A client with Tasks gets a task rather than a request held open while the payment is made.
    const tasks = this.options.tasks !== false && declaresTasks(ctx);
    const raw = ctx.mcpReq.requestState<unknown>();
    let subject: string;
    let answers: RoundAnswers | undefined;
    if (raw === undefined) {
      subject =
        caller.kind === 'known'
          ? caller.subject
          : ((await this.#payerOfCredential(tool, ctx)) ?? newOpaqueSubject(tool.name));
    } else {
      const redeemed = await this.#redeem(tool, args, ctx, caller, raw);
      if (redeemed.kind === 'refused') return this.#refusal(tool, redeemed.refusal);
      if (redeemed.kind === 'answered') return redeemed.result;
      subject = redeemed.subject;
      answers = redeemed.answers;
    }
    // Remembering a method is for payers who come back; a stateless request's payer never does.
    const remember = !subject.startsWith('request:');
    const interaction =
      this.#rt.settings.flow === 'two_step' || (!client.form && !client.url)
        ? resultOnlyInteraction
        : inputRequiredInteraction(client, answers, remember);
    const outcome = await tracedCall(
      this.#rt,
      tool.name,
      this.#context(ctx, subject, client, interaction, !tasks),
      (traced) => this.v2.internals.pipeline.call(tool, args, traced),
    );
    return this.#present(tool, outcome, subject, remember, tasks);
  }

  async confirm(
    tools: ReadonlyMap<string, PaidTool>,
    paymentId: string,
    method: string | undefined,
    ctx: ServerContext,
  ): Promise<CallToolResult> {
    const caller = this.#caller(ctx);
    // A stateless anonymous caller is known by the payment it names: an anonymous payment is redeemable by its id.
    const subject = caller.kind === 'known' ? caller.subject : newOpaqueSubject();
    const callCtx = this.#context(ctx, subject, this.#client(ctx), resultOnlyInteraction);
    const outcome = await tracedCall(this.#rt, CONFIRM_PAYMENT_TOOL, callCtx, (traced) =>
      this.v2.internals.pipeline.confirm(tools, paymentId, method, traced),
    );
    const tool = 'intent' in outcome ? tools.get(outcome.intent.binding.tool) : undefined;
    return presentResult(
      this.#rt,
      tool ?? { name: CONFIRM_PAYMENT_TOOL, hasOutputSchema: false },
      outcome,
    ) as CallToolResult;
  }

  /**
   * Check an echoed requestState: sealed by us, not expired, for this tool and these arguments,
   * for this payer, and not redeemed before. A redeemed state never runs or charges anything again:
   * its payer gets the stored result if the call ran, anyone else the refusal.
   */
  async #redeem(
    tool: PaidTool,
    args: Record<string, unknown>,
    ctx: ServerContext,
    caller: Caller,
    raw: unknown,
  ): Promise<
    | { kind: 'refused'; refusal: StateRefusal }
    | { kind: 'answered'; result: CallToolResult }
    | { kind: 'round'; subject: string; answers: RoundAnswers }
  > {
    const now = Date.now();
    const opened = this.v2.sealer.open(raw, now);
    if (!opened.ok) return { kind: 'refused', refusal: { reason: opened.reason } };
    const { payload } = opened;
    if (payload.tool !== tool.name) return { kind: 'refused', refusal: { reason: 'other_call' } };
    const wire = tool.wireForm(args);
    if (!wire.ok || wire.hash !== payload.argsHash)
      return { kind: 'refused', refusal: { reason: 'other_call' } };

    const intent = await this.#rt.store.get(payload.intentId);
    let subject: string;
    if (caller.kind === 'known') {
      subject = caller.subject;
    } else {
      // No session, no auth: the payer is the one the named payment was opened for, if that was an anonymous one.
      if (!intent) return { kind: 'refused', refusal: { reason: 'gone' } };
      if (!isAnonymousSubject(intent.binding.subject))
        return { kind: 'refused', refusal: { reason: 'other_subject' } };
      subject = intent.binding.subject;
    }
    if (!this.v2.sealer.sameTag(this.v2.sealer.subjectTag(subject), opened.subjectTag))
      return { kind: 'refused', refusal: { reason: 'other_subject' } };
    if (intent && !sameCall(intent, payload, subject))
      return { kind: 'refused', refusal: { reason: 'other_call' } };

    const first = await this.#rt.store.markEvent(
      `payrouter:request-state:${payload.nonce}`,
      Math.max(1, payload.expiresAt - now) + REDEEMED_MARGIN_MS,
    );
    // A call that ran is answered from its stored result, whoever asks again with its state (the
    // payer: checked above). A lost reply must not cost the payer; nothing runs twice.
    if (intent?.run === 'done') {
      const callCtx = this.#context(ctx, subject, this.#client(ctx), resultOnlyInteraction);
      const outcome = await tracedCall(this.#rt, tool.name, callCtx, (traced) =>
        this.v2.internals.pipeline.confirm(new Map([[tool.name, tool]]), intent.id, undefined, traced),
      );
      return { kind: 'answered', result: presentResult(this.#rt, tool, outcome) as CallToolResult };
    }
    if (!first) return { kind: 'refused', refusal: { reason: 'used', intent } };

    const responses = ctx.mcpReq.inputResponses;
    const answers: RoundAnswers = { intentId: payload.intentId };
    if (payload.step.kind === 'choose') {
      const choice = readChoice(responses);
      if (choice) answers.choice = choice;
    } else {
      const answer = readDelivery(responses);
      if (answer) answers.delivery = { deliveryId: payload.step.deliveryId, answer };
    }
    return { kind: 'round', subject, answers };
  }

  /**
   * A stateless anonymous caller sending a machine credential is the payer of the payment the
   * credential names (x402: the requirement it accepted carries the payment id), if that payment
   * is an anonymous one for this tool; an anonymous payment is redeemable by its id anyway. The
   * pipeline then verifies the credential against that payment's binding before anything runs.
   */
  async #payerOfCredential(tool: PaidTool, ctx: ServerContext): Promise<string | undefined> {
    const paymentId = x402PaymentIdOf(credentialOf(ctx.mcpReq._meta as Record<string, unknown> | undefined));
    if (paymentId === undefined || !looksLikeIntentId(paymentId)) return undefined;
    const intent = await this.#rt.store.get(paymentId);
    if (intent === undefined || intent.binding.tool !== tool.name) return undefined;
    return isAnonymousSubject(intent.binding.subject) ? intent.binding.subject : undefined;
  }

  #present(
    tool: PaidTool,
    outcome: Outcome,
    subject: string,
    remember: boolean,
    tasks: boolean,
  ): CallToolResult | InputRequiredResult {
    if (
      tasks &&
      outcome.kind === 'payment_required' &&
      (outcome.reason === 'timed_out' || outcome.reason === 'unknown') &&
      liveAttempt(outcome.intent) !== undefined
    ) {
      // The payer accepted the link and has not paid yet: the call goes on as a task, found again
      // by its id alone (the payment is in the store), on any instance.
      const { intent } = outcome;
      const createdAt = Date.now();
      const taskId = this.v2.sealer.sealTask(
        { intentId: intent.id, tool: tool.name, argsHash: intent.binding.argsHash, createdAt },
        subject,
      );
      // `content` because the SDK checks every tools/call result as a CallToolResult.
      return {
        resultType: 'task',
        content: [],
        ...taskOf(this.#rt, tool, taskId, createdAt, outcome),
      } as unknown as CallToolResult;
    }
    if (outcome.kind !== 'input_required') return presentResult(this.#rt, tool, outcome) as CallToolResult;
    const { intent, ask } = outcome;
    const { state } = this.v2.sealer.seal(
      {
        intentId: intent.id,
        tool: tool.name,
        argsHash: intent.binding.argsHash,
        step: stepOf(ask),
        expiresAt: Date.now() + REQUEST_STATE_TTL_MS,
      },
      subject,
    );
    const info = pendingInfo(this.#rt, {
      kind: 'payment_required',
      intent,
      reason: ask.kind === 'choose' ? 'requires_method' : 'new',
    });
    return {
      ...inputRequired({ inputRequests: inputRequestsFor(intent, ask, remember), requestState: state }),
      _meta: { [PAYMENT_META_KEY]: info },
    };
  }

  /** `tasks/get`: the task as its payment stands now; paid, the tool runs (once) and the task completes. */
  async getTask(tools: ReadonlyMap<string, PaidTool>, taskId: string, ctx: ServerContext): Promise<TaskJson> {
    const { task, tool, subject } = await this.#task(tools, taskId, ctx);
    const callCtx = this.#context(ctx, subject, this.#client(ctx), resultOnlyInteraction, false);
    const outcome = await tracedCall(this.#rt, tool.name, callCtx, (traced) =>
      this.v2.internals.pipeline.confirm(tools, task.intentId, undefined, traced),
    );
    return taskOf(this.#rt, tool, taskId, task.createdAt, outcome);
  }

  /** `tasks/update`: a task waiting for its payment asks nothing, so answers are acknowledged and ignored. */
  async updateTask(
    tools: ReadonlyMap<string, PaidTool>,
    taskId: string,
    ctx: ServerContext,
  ): Promise<Record<string, never>> {
    await this.#task(tools, taskId, ctx);
    return {};
  }

  /** `tasks/cancel`: cancel the unpaid payment (and its provider payment where it can be); a paid one runs on. */
  async cancelTask(
    tools: ReadonlyMap<string, PaidTool>,
    taskId: string,
    ctx: ServerContext,
  ): Promise<Record<string, never>> {
    const { task } = await this.#task(tools, taskId, ctx);
    try {
      await operatorCancel(this.#rt, task.intentId, { reason: 'canceled by the client (tasks/cancel)' });
    } catch (error) {
      // Paid meanwhile: cancellation is cooperative, and the task completes with the result.
      if (!(error instanceof PayRouterError)) throw error;
    }
    return {};
  }

  /**
   * The task an id names, for this caller: sealed by us, its payment still there and for the same
   * call, and the caller its payer (a stateless anonymous caller: the payment's, if that was an
   * anonymous one). Anything else is the same "unknown task", so ids reveal nothing.
   */
  async #task(
    tools: ReadonlyMap<string, PaidTool>,
    taskId: string,
    ctx: ServerContext,
  ): Promise<{ task: TaskIdPayload; tool: PaidTool; subject: string }> {
    const unknown = () => new ProtocolError(ProtocolErrorCode.InvalidParams, 'Unknown task');
    const task = this.v2.sealer.openTask(taskId);
    const tool = task ? tools.get(task.tool) : undefined;
    if (!task || !tool) throw unknown();
    const intent = await this.#rt.store.get(task.intentId);
    if (!intent || intent.binding.tool !== task.tool || intent.binding.argsHash !== task.argsHash)
      throw unknown();
    const caller = this.#caller(ctx);
    const subject =
      caller.kind === 'known'
        ? caller.subject
        : isAnonymousSubject(intent.binding.subject)
          ? intent.binding.subject
          : undefined;
    if (
      subject === undefined ||
      subject !== intent.binding.subject ||
      !this.v2.sealer.sameTag(this.v2.sealer.subjectTag(subject), task.subjectTag)
    )
      throw unknown();
    return { task, tool, subject };
  }

  #refusal(tool: PaidTool, refusal: StateRefusal): CallToolResult {
    return stateRefusal(this.#rt, tool.name, refusal) as CallToolResult;
  }

  /** Who pays, on a v2 context: the subject option, else the auth `sub`, else the session, else this stateless request. */
  #caller(ctx: ServerContext): Caller {
    const fromOption = this.options.subject?.(ctx);
    if (typeof fromOption === 'string' && fromOption.length > 0)
      return { kind: 'known', subject: `custom:${fromOption}` };
    const sub = ctx.http?.authInfo?.extra?.['sub'];
    if (typeof sub === 'string' && sub.length > 0) return { kind: 'known', subject: `user:${sub}` };
    if (ctx.sessionId) return { kind: 'known', subject: `session:${ctx.sessionId}` };
    return { kind: 'stateless' };
  }

  /**
   * What this request's client declared: on protocol 2026-07-28 the request's own envelope (never
   * an earlier request's); on a 2025 session, what it declared at initialize (nothing on a stateless
   * 2025 request, whose client cannot be asked anything).
   */
  #client(ctx: ServerContext): ClientSupport {
    const envelope = ctx.mcpReq.envelope as Record<string, unknown> | undefined;
    const modern = envelope?.[PROTOCOL_VERSION_META_KEY] !== undefined;
    const caps = (
      modern ? envelope?.[CLIENT_CAPABILITIES_META_KEY] : this.server.server.getClientCapabilities()
    ) as { elicitation?: unknown } | undefined;
    const elicitation = caps?.elicitation as { form?: unknown; url?: unknown } | undefined;
    if (elicitation === undefined || elicitation === null || typeof elicitation !== 'object')
      return { form: false, url: false };
    const url = elicitation.url !== undefined;
    return { form: elicitation.form !== undefined || !url, url };
  }

  #context(
    ctx: ServerContext,
    subject: string,
    client: ClientSupport,
    interaction: Interaction,
    /** False: answer at once, never waiting for the payment in this request (a task waits instead). */
    waits = true,
  ): CallContext {
    // `_meta` (traceparent, tracestate) lets the call span continue the client's trace.
    const extra: CallExtra & { _meta?: Record<string, unknown> } = {
      signal: ctx.mcpReq.signal,
      requestId: ctx.mcpReq.id,
      ...(ctx.mcpReq._meta ? { _meta: ctx.mcpReq._meta as Record<string, unknown> } : {}),
    };
    contexts.set(extra, ctx);
    const settings = this.#rt.settings;
    // x402 declares no capability, and a stateless request has no connection to remember: a
    // request that carries a credential is one that pays by itself.
    const credential = credentialOf(extra._meta);
    return {
      subject,
      anonymous: !subject.startsWith('user:') && !subject.startsWith('custom:'),
      client: credential === undefined ? client : { ...client, machine: true },
      ...(credential === undefined ? {} : { credential }),
      interaction,
      deadline: Date.now() + (waits ? settings.callBudgetMs : 0),
      signal: ctx.mcpReq.signal,
      extra,
      progress: progressReporter(ctx),
    };
  }
}

/** The payment id an x402 credential names: `accepted.extra.payment_id` of the requirement it signed. */
function x402PaymentIdOf(credential: PresentedCredential | undefined): string | undefined {
  if (credential?.scheme !== 'x402') return undefined;
  const accepted = (credential.payload as { accepted?: { extra?: Record<string, unknown> } } | null)
    ?.accepted;
  const id = accepted?.extra?.['payment_id'];
  return typeof id === 'string' ? id : undefined;
}

/**
 * A fresh anonymous payer for a stateless request that names no payment. With a tool, it joins
 * that tool's pool of such payers, whose open payments are bounded together.
 */
function newOpaqueSubject(tool?: string): string {
  return tool === undefined ? `request:${newOpaqueId('req')}` : `request:tool:${tool}/${newOpaqueId('req')}`;
}

function stepOf(ask: InputAsk): RequestStatePayload['step'] {
  return ask.kind === 'choose' ? { kind: 'choose' } : { kind: 'deliver', deliveryId: ask.link.deliveryId };
}

/** The named payment is for this very call and payer. */
function sameCall(intent: IntentRecord, payload: RequestStatePayload, subject: string): boolean {
  return (
    intent.binding.tool === payload.tool &&
    intent.binding.argsHash === payload.argsHash &&
    intent.binding.subject === subject
  );
}

/** Progress notes on v2: only when the client gave a progress token; failures ignored. */
function progressReporter(ctx: ServerContext): (message: string) => void {
  const token = ctx.mcpReq._meta?.progressToken;
  if (token === undefined) return () => {};
  let progress = 0;
  return (message: string) => {
    progress += 1;
    ctx.mcpReq
      .notify({ method: 'notifications/progress', params: { progressToken: token, progress, message } })
      .catch(() => {});
  };
}
