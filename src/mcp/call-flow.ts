import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { canonicalJson, sha256Hex } from '../core/canonical-json.js';
import { MoneyError, ProviderError } from '../core/errors.js';
import { looksLikeIntentId, newIntentId } from '../core/ids.js';
import { type Binding, bindingKey, type IntentRecord } from '../core/intent/record.js';
import { isFinalStatus, type PaymentStatus } from '../core/intent/status.js';
import { advanceStatus, isResumable, liveAttempt, sameBinding } from '../core/intent/transitions.js';
import type { Money } from '../core/money/money.js';
import { feeFor } from '../core/route/fees.js';
import { type RouteDecision, routeCharge } from '../core/route/route.js';
import { cancelLiveAttempt, closeOtherAttempts, ensureAttempt } from '../engine/attempts.js';
import { updateIntent } from '../engine/intents.js';
import { type PaidTool, priceForCall } from '../engine/paid-tool.js';
import { runOnce } from '../engine/run-once.js';
import type { RouterCore } from '../engine/runtime.js';
import { clientSupport } from './client-support.js';
import { deliverLinkByForm, deliverLinkByUrl } from './link-delivery.js';
import {
  choiceQuestion,
  declinedOpenText,
  declinedText,
  endedText,
  formLinkMessage,
  pendingText,
  stillPendingText,
  toolFailedText,
  unknownText,
  urlConsentMessage,
} from './messages.js';
import { askForMethod } from './method-choice.js';
import {
  buildPaymentInfo,
  type PaymentAlternative,
  type PaymentInfo,
  paymentResult,
  withPaymentMeta,
} from './payment-result.js';
import { progressReporter } from './progress.js';
import { resolveSubject, type ToolExtra } from './subject.js';

/** Rounds of "someone else opened this binding first" before inserting regardless (never hit in practice). */
const MAX_OPEN_ROUNDS = 5;

/** A plain error result with no payment attached (nothing was created). */
function plainError(text: string): CallToolResult {
  return { isError: true, content: [{ type: 'text', text }] };
}

/**
 * The paid call, step by step (DESIGN.md §2): price, resume, route, choose, create, deliver,
 * confirm, run exactly once. One instance per PayRouter, shared by every installed server.
 */
export class PaidCallFlow {
  /** When each call must have answered: every wait inside it fits the client's request timeout. */
  private readonly deadlines = new WeakMap<ToolExtra, number>();
  /** Per binding key: the last "resume or open" decision in progress in this process. */
  private readonly openings = new Map<string, Promise<void>>();

  constructor(private readonly core: RouterCore) {}

  private startCall(extra: ToolExtra): void {
    if (!this.deadlines.has(extra)) this.deadlines.set(extra, Date.now() + this.core.settings.callBudgetMs);
  }

  /** A step's timeout, cut to what is left of the call's budget (at least 1 ms). */
  private budget(extra: ToolExtra, stepMs: number): number {
    const deadline = this.deadlines.get(extra) ?? Date.now() + this.core.settings.callBudgetMs;
    return Math.max(1, Math.min(stepMs, deadline - Date.now()));
  }

  /** A call of a priced tool with its SDK-validated arguments. */
  async handleCall(
    server: McpServer,
    tool: PaidTool,
    args: Record<string, unknown>,
    extra: ToolExtra,
  ): Promise<CallToolResult> {
    this.startCall(extra);
    const subject = resolveSubject(server, extra, this.core.subject);
    const argsJson = canonicalJson(args);
    if (Buffer.byteLength(argsJson) > this.core.settings.maxArgumentBytes) {
      return plainError(
        `The arguments of "${tool.name}" are too large for a paid call. Nothing was charged.`,
      );
    }
    let money: Money;
    try {
      money = await priceForCall(tool, args);
    } catch (error) {
      const reason = error instanceof MoneyError ? error.message : 'the price could not be computed';
      this.core.logger.error('dynamic price failed', { tool: tool.name, error });
      return plainError(`This call of "${tool.name}" could not be priced (${reason}). Nothing was charged.`);
    }
    const binding: Binding = {
      tool: tool.name,
      argsHash: sha256Hex(argsJson),
      amount: money.minor,
      currency: money.currency,
      subject,
    };

    // Identical calls arriving together (a client retrying, a model calling twice) must share one
    // intent and one provider payment: deciding "resume or open" is serialised per binding.
    const opened = await this.serialised(bindingKey(binding), () =>
      this.openOrResume(server, tool, args, binding, argsJson, money),
    );
    switch (opened.kind) {
      case 'error':
        return plainError(opened.text);
      case 'run':
        return this.run(tool, opened.intent, extra);
      case 'deliver':
        return this.deliver(server, tool, opened.intent, extra, true);
      case 'proceed':
        return this.proceed(server, tool, opened.intent, extra, opened.decision);
    }
  }

  /** The intent an identical call should continue with: an open one of this binding, or a new one. */
  private async openOrResume(
    server: McpServer,
    tool: PaidTool,
    args: Record<string, unknown>,
    binding: Binding,
    argsJson: string,
    money: Money,
  ): Promise<
    | { kind: 'error'; text: string }
    | { kind: 'run' | 'deliver'; intent: IntentRecord }
    | { kind: 'proceed'; intent: IntentRecord; decision?: RouteDecision }
  > {
    let decision: RouteDecision | undefined;
    for (let round = 0; ; round++) {
      const existing = await this.core.store.findByBinding(bindingKey(binding));
      if (existing && sameBinding(existing.binding, binding) && isResumable(existing, Date.now())) {
        this.core.logger.debug('resuming payment', { intentId: existing.id, status: existing.status });
        if (existing.status === 'paid') return { kind: 'run', intent: existing };
        if (!liveAttempt(existing)) return { kind: 'proceed', intent: existing };
        const checked = await this.core.confirmation.check(existing.id, { fresh: true });
        const current = checked?.intent ?? existing;
        if (current.status === 'paid') return { kind: 'run', intent: current };
        if (!isFinalStatus(current.status)) return { kind: 'deliver', intent: current };
        // Ended unpaid: this call starts a new payment.
      }

      if (decision === undefined) {
        decision = await this.route(server, tool, money, binding.subject);
        if (decision.action.kind === 'none')
          return { kind: 'error', text: `${decision.action.message} Nothing was charged.` };
        const refusal = await this.beforeCharge(tool, args, money, binding.subject);
        if (refusal !== undefined)
          return { kind: 'error', text: `Payment refused: ${refusal}. Nothing was charged.` };
      }

      const intent = this.newIntent(tool, binding, argsJson, decision);
      // Atomic across instances: only if the binding still points where we looked. If an identical
      // call on another instance opened an intent meanwhile, go round and resume that one instead.
      const owner = round < MAX_OPEN_ROUNDS ? { bindingOwner: existing?.id ?? null } : {};
      if (await this.core.store.insert(intent, owner)) {
        this.core.logger.debug('payment intent created', {
          intentId: intent.id,
          tool: tool.name,
          amount: money,
        });
        return { kind: 'proceed', intent, decision };
      }
    }
  }

  /** Run `task` after every earlier task of the same key in this process has finished. */
  private async serialised<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.openings.get(key) ?? Promise.resolve();
    const current = previous.then(task, task);
    const settled = current.then(
      () => undefined,
      () => undefined,
    );
    this.openings.set(key, settled);
    try {
      return await current;
    } finally {
      if (this.openings.get(key) === settled) this.openings.delete(key);
    }
  }

  /** `confirm_payment`: confirm a payment of this subject, optionally switch its method, and run its call. */
  async confirm(
    server: McpServer,
    paymentId: string,
    method: string | undefined,
    extra: ToolExtra,
  ): Promise<CallToolResult> {
    this.startCall(extra);
    const subject = resolveSubject(server, extra, this.core.subject);
    // Junk never reaches the store; a well-formed id is 144 random bits, so guessing is hopeless.
    const intent = looksLikeIntentId(paymentId) ? await this.core.store.get(paymentId) : undefined;
    // The same answer for "no such payment" and "someone else's payment": ids reveal nothing.
    if (!intent || intent.binding.subject !== subject) {
      return plainError(`Unknown payment_id "${paymentId}". Call the paid tool again to start a payment.`);
    }
    const tool = this.core.toolsOf(server).get(intent.binding.tool);
    if (!tool)
      return plainError(`The tool "${intent.binding.tool}" of this payment is not available on this server.`);

    if (intent.status === 'paid') return this.run(tool, intent, extra);
    if (isFinalStatus(intent.status)) return this.describe(tool, intent, intent.status);

    if (method !== undefined) {
      if (!intent.eligible.includes(method)) {
        return plainError(
          `"${method}" cannot take this payment. Choose one of: ${intent.eligible.join(', ')}.`,
        );
      }
      if (liveAttempt(intent)?.providerId !== method)
        return this.switchMethod(server, tool, intent, method, extra);
    }
    if (!liveAttempt(intent)) return this.proceed(server, tool, intent, extra);

    // The user says they paid: ask now rather than at the next poll.
    const checked = await this.core.confirmation.check(intent.id, { fresh: true });
    if (checked?.intent.status === 'paid') return this.run(tool, checked.intent, extra);
    if (checked && isFinalStatus(checked.intent.status))
      return this.describe(tool, checked.intent, checked.intent.status);
    const waited = await this.core.confirmation.waitFor(intent.id, {
      timeoutMs: this.budget(extra, Math.min(this.core.settings.paymentWaitMs, 10_000)),
      signal: extra.signal,
      onPoll: progressFor(extra),
    });
    return this.afterWait(server, tool, waited?.intent ?? intent, waited?.status, extra, false);
  }

  /** What `router.explain` shows: the routing decision for a call, without side effects. */
  async explain(
    server: McpServer | undefined,
    tool: PaidTool,
    args: Record<string, unknown>,
    subject?: string,
  ) {
    const money = await priceForCall(tool, args);
    const remembered = subject === undefined ? undefined : await this.core.store.getChoice(subject);
    return routeCharge({
      charge: money,
      providers: this.core.providers,
      toolProviders: tool.providers,
      remembered,
      client: server ? clientSupport(server) : { form: false, url: false },
      policy: this.core.settings.policy,
    });
  }

  private async route(
    server: McpServer,
    tool: PaidTool,
    money: Money,
    subject: string,
  ): Promise<RouteDecision> {
    const remembered = await this.core.store.getChoice(subject);
    return routeCharge({
      charge: money,
      providers: this.core.providers,
      toolProviders: tool.providers,
      remembered,
      client: clientSupport(server),
      policy: this.core.settings.policy,
    });
  }

  private async beforeCharge(
    tool: PaidTool,
    args: unknown,
    amount: Money,
    subject: string,
  ): Promise<string | undefined> {
    const hook = this.core.hooks.beforeCharge;
    if (!hook) return undefined;
    try {
      const verdict = await hook({ tool: tool.name, args, amount, subject });
      if (verdict === false) return 'not allowed';
      if (verdict && typeof verdict === 'object' && verdict.allow === false)
        return verdict.reason ?? 'not allowed';
      return undefined;
    } catch (error) {
      // A failing policy hook refuses: charging when the author's check could not run is the worse error.
      this.core.logger.error('beforeCharge hook threw; refusing the charge', { error });
      return 'the payment policy check failed';
    }
  }

  private newIntent(
    tool: PaidTool,
    binding: Binding,
    argsJson: string,
    decision: RouteDecision,
  ): IntentRecord {
    const now = Date.now();
    return {
      id: newIntentId(),
      version: 1,
      binding,
      argsJson,
      description: tool.description,
      status: 'requires_method',
      eligible: decision.eligible.map((e) => e.providerId),
      attempts: [],
      run: 'unused',
      fence: 0,
      runErrors: [],
      createdAt: now,
      updatedAt: now,
      // Until a provider payment exists, the intent lives as long as a link would.
      expiresAt: now + this.core.settings.paymentTtlMs + 60 * 60 * 1000,
    };
  }

  /** Choose a method if needed, create the payment, deliver the link. */
  private async proceed(
    server: McpServer,
    tool: PaidTool,
    intent: IntentRecord,
    extra: ToolExtra,
    decision?: RouteDecision,
  ): Promise<CallToolResult> {
    const route =
      decision ??
      (await this.route(
        server,
        tool,
        { minor: intent.binding.amount, currency: intent.binding.currency },
        intent.binding.subject,
      ));
    let providerId: string;
    if (route.action.kind === 'none') return plainError(`${route.action.message} Nothing was charged.`);
    if (route.action.kind === 'use' && route.action.basis === 'policy' && this.core.settings.publicUrl) {
      // The hosted pay page lets this user choose: no provider payment until they do.
      return this.deliver(server, tool, intent, extra, false);
    }
    if (route.action.kind === 'use') {
      providerId = route.action.providerId;
    } else {
      let choice: Awaited<ReturnType<typeof askForMethod>>;
      try {
        choice = await askForMethod(server, extra, {
          message: choiceQuestion(intent),
          eligible: route.eligible,
          timeoutMs: this.budget(extra, this.core.settings.choiceMs),
        });
      } catch (error) {
        if (extra.signal.aborted)
          return plainError('The call was canceled before a payment method was chosen. Nothing was charged.');
        this.core.logger.warn('method choice elicitation failed; using the first eligible method', { error });
        choice = { kind: 'chosen', providerId: route.eligible[0]!.providerId, remember: false };
      }
      if (choice.kind !== 'chosen') {
        const canceled = await updateIntent(this.core.store, intent.id, (c) =>
          advanceStatus(c, 'canceled', Date.now()),
        );
        const ended = canceled ?? intent;
        return paymentResult(
          declinedText(ended),
          this.info(ended, 'canceled', `Call ${tool.name} again to pay.`),
          tool.hasOutputSchema,
        );
      }
      providerId = choice.providerId;
      if (choice.remember) {
        await this.core.store.setChoice(
          intent.binding.subject,
          providerId,
          this.core.settings.rememberChoiceMs,
        );
      }
    }

    let withAttempt: IntentRecord;
    try {
      withAttempt = await ensureAttempt(this.core, intent.id, providerId);
    } catch (error) {
      return this.providerFailure(tool, intent, error);
    }
    if (withAttempt.status === 'paid') return this.run(tool, withAttempt, extra);
    return this.deliver(server, tool, withAttempt, extra, false);
  }

  private async switchMethod(
    server: McpServer,
    tool: PaidTool,
    intent: IntentRecord,
    method: string,
    extra: ToolExtra,
  ) {
    let latest: IntentRecord;
    try {
      latest = await this.selectMethod(intent, method);
    } catch (error) {
      return this.providerFailure(tool, intent, error);
    }
    if (latest.status === 'paid') return this.run(tool, latest, extra);
    if (isFinalStatus(latest.status)) return this.describe(tool, latest, latest.status);
    return this.deliver(server, tool, latest, extra, false);
  }

  /**
   * Pay an open intent with `providerId` (from confirm_payment's `method` or the hosted pay page):
   * creates that provider's payment once and cancels the previous one. If the previous one was
   * paid meanwhile, nothing is switched: money that moved is never abandoned.
   * Throws ProviderError when the provider fails; returns the intent as stored afterwards.
   */
  async selectMethod(intent: IntentRecord, providerId: string): Promise<IntentRecord> {
    if (!intent.eligible.includes(providerId)) {
      throw new ProviderError(providerId, 'not_supported', `"${providerId}" cannot take this payment`);
    }
    const checked = liveAttempt(intent)
      ? await this.core.confirmation.check(intent.id, { fresh: true })
      : undefined;
    const current = checked?.intent ?? intent;
    if (current.status === 'paid' || isFinalStatus(current.status)) return current;
    const previous = liveAttempt(current);
    if (previous?.providerId === providerId) return current;
    const switched = await ensureAttempt(this.core, intent.id, providerId);
    if (previous) await cancelLiveAttempt(this.core, { ...current, attempts: [previous] });
    return (await this.core.store.get(intent.id)) ?? switched;
  }

  /** Hand the link to the user the best way this client allows, then wait (bounded) for payment. */
  private async deliver(
    server: McpServer,
    tool: PaidTool,
    intent: IntentRecord,
    extra: ToolExtra,
    resumed: boolean,
  ) {
    const client = clientSupport(server);
    const flow = this.core.settings.flow;
    const label = this.methodLabel(intent);
    const url = this.linkFor(intent);

    let answer: 'accepted' | 'declined' | 'canceled';
    const viaUrl = flow !== 'two_step' && client.url;
    const elicitationId = `${intent.id}.${intent.attempts.length}`;
    try {
      if (viaUrl) {
        answer = await deliverLinkByUrl(server, extra, {
          message: urlConsentMessage(intent, label),
          url,
          elicitationId,
          timeoutMs: this.budget(extra, this.core.settings.choiceMs),
        });
      } else if (flow === 'elicitation' && client.form) {
        answer = await deliverLinkByForm(server, extra, {
          message: formLinkMessage(intent, label, url),
          timeoutMs: this.budget(extra, this.core.settings.paymentWaitMs + this.core.settings.choiceMs),
        });
      } else {
        return this.pending(tool, intent, resumed);
      }
    } catch (error) {
      if (!extra.signal.aborted)
        this.core.logger.warn('link elicitation failed; returning the payment link', { error });
      return this.pending(tool, intent, resumed);
    }

    if (answer !== 'accepted') {
      // The user may have paid before dismissing: look before canceling anything.
      const checked = await this.core.confirmation.check(intent.id, { fresh: true });
      const current = checked?.intent ?? intent;
      if (current.status === 'paid') return this.run(tool, current, extra);
      await cancelLiveAttempt(this.core, current);
      const after = (await this.core.store.get(intent.id)) ?? current;
      if (after.status === 'paid') return this.run(tool, after, extra);
      const live = liveAttempt(after);
      if (live !== undefined && !isFinalStatus(live.status)) {
        // The provider cannot cancel it (Walleot has no cancel API): the link would still take
        // money, so the payment stays open and a later confirm or retry still finds it.
        return paymentResult(
          declinedOpenText(after, this.linkFor(after)),
          this.info(after, after.status, `Call ${tool.name} again or confirm_payment if you pay after all.`),
          tool.hasOutputSchema,
        );
      }
      const canceled =
        (await updateIntent(this.core.store, intent.id, (c) => advanceStatus(c, 'canceled', Date.now()))) ??
        after;
      return paymentResult(
        declinedText(canceled),
        this.info(canceled, 'canceled', `Call ${tool.name} again to pay.`),
        tool.hasOutputSchema,
      );
    }

    const waited = await this.core.confirmation.waitFor(intent.id, {
      timeoutMs: this.budget(extra, this.core.settings.paymentWaitMs),
      signal: extra.signal,
      onPoll: progressFor(extra),
    });
    if (waited?.intent.status === 'paid' && viaUrl) {
      await server.server
        .createElicitationCompletionNotifier(elicitationId, { relatedRequestId: extra.requestId })()
        .catch(() => {});
    }
    return this.afterWait(server, tool, waited?.intent ?? intent, waited?.status, extra, resumed);
  }

  private async afterWait(
    _server: McpServer,
    tool: PaidTool,
    intent: IntentRecord,
    effective: PaymentStatus | undefined,
    extra: ToolExtra,
    resumed: boolean,
  ): Promise<CallToolResult> {
    if (intent.status === 'paid') return this.run(tool, intent, extra);
    if (isFinalStatus(intent.status)) return this.describe(tool, intent, intent.status);
    if (effective === 'unknown') {
      return paymentResult(
        unknownText(intent),
        this.info(intent, 'unknown', 'Call confirm_payment again shortly.'),
        tool.hasOutputSchema,
      );
    }
    return this.pending(tool, intent, resumed);
  }

  private async run(tool: PaidTool, intent: IntentRecord, extra: ToolExtra): Promise<CallToolResult> {
    await closeOtherAttempts(this.core, intent);
    const outcome = await runOnce(this.core, tool, intent, extra);
    switch (outcome.kind) {
      case 'result':
        return withPaymentMeta(
          outcome.result as CallToolResult,
          this.info(outcome.intent, 'paid', 'Done: the tool ran.'),
        );
      case 'tool_failed': {
        const text = toolFailedText(outcome.intent, outcome.message, outcome.refunded);
        const status = outcome.refunded ? 'refunded' : 'paid';
        return paymentResult(
          text,
          this.info(
            outcome.intent,
            status,
            outcome.refunded ? 'Nothing to do.' : `Retry with confirm_payment.`,
          ),
          tool.hasOutputSchema,
        );
      }
      case 'not_paid':
        return this.describe(tool, outcome.intent, outcome.intent.status);
      case 'mismatch':
        return plainError('This payment was made for a different call. Nothing ran.');
      case 'gone':
        return plainError('This payment no longer exists. Call the tool again to start a new payment.');
    }
  }

  private describe(tool: PaidTool, intent: IntentRecord, status: PaymentStatus): CallToolResult {
    if (status === 'pending' || status === 'requires_method') return this.pending(tool, intent, true);
    if (status === 'unknown') {
      return paymentResult(
        unknownText(intent),
        this.info(intent, 'unknown', 'Call confirm_payment again shortly.'),
        tool.hasOutputSchema,
      );
    }
    return paymentResult(
      endedText(intent, status),
      this.info(intent, status, `Call ${tool.name} again to start a new payment.`),
      tool.hasOutputSchema,
    );
  }

  /** The payment-required result: amount, method, link, what to do next, alternatives. */
  private pending(tool: PaidTool, intent: IntentRecord, resumed: boolean): CallToolResult {
    const label = this.methodLabel(intent);
    const url = this.linkFor(intent);
    const alternatives = this.alternatives(intent);
    const text = resumed ? stillPendingText(intent, url) : pendingText(intent, label, url, alternatives);
    return paymentResult(
      text,
      this.info(intent, intent.status, `Pay at payment_url, then call confirm_payment with this payment_id.`),
      tool.hasOutputSchema,
    );
  }

  private providerFailure(tool: PaidTool, intent: IntentRecord, error: unknown): CallToolResult {
    const userMessage =
      error instanceof ProviderError ? error.userMessage : 'The payment could not be started.';
    this.core.logger.error('creating the provider payment failed', { intentId: intent.id, error });
    return paymentResult(
      `${userMessage} Nothing was charged. Call ${tool.name} again to retry; the same payment will be reused.`,
      this.info(intent, intent.status, `Call ${tool.name} again to retry.`),
      tool.hasOutputSchema,
    );
  }

  private methodLabel(intent: IntentRecord): string {
    const attempt = liveAttempt(intent);
    if (!attempt) return 'a payment method of your choice';
    return this.core.providerById.get(attempt.providerId)?.capabilities.label ?? attempt.providerId;
  }

  /** The link a user opens: the hosted pay page when the server has one, else the provider's checkout. */
  linkFor(intent: IntentRecord): string {
    if (this.core.settings.publicUrl) return `${this.core.settings.publicUrl}/pay/${intent.id}`;
    return liveAttempt(intent)?.url ?? '';
  }

  private alternatives(intent: IntentRecord): PaymentAlternative[] {
    const current = liveAttempt(intent)?.providerId;
    const money = { minor: intent.binding.amount, currency: intent.binding.currency };
    return intent.eligible
      .filter((id) => id !== current)
      .flatMap((id) => {
        const provider = this.core.providerById.get(id);
        if (!provider) return [];
        const fee = feeFor(provider.capabilities.fee, money);
        return [
          {
            provider: id,
            label: provider.capabilities.label,
            fee: fee === 0 ? 'no fee' : provider.capabilities.fee.label,
          },
        ];
      });
  }

  info(intent: IntentRecord, status: PaymentStatus, next: string): PaymentInfo {
    const attempt = liveAttempt(intent);
    const provider = attempt ? this.core.providerById.get(attempt.providerId) : undefined;
    const url = this.linkFor(intent);
    return buildPaymentInfo(intent, {
      status,
      providerLabel: provider?.capabilities.label,
      url: url === '' ? undefined : url,
      alternatives: this.alternatives(intent),
      next,
    });
  }
}

function progressFor(extra: ToolExtra) {
  const report = progressReporter(extra);
  return () => report('Waiting for the payment to complete…');
}
