import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { type Logger, namespaced } from '../../core/logger.js';
import type { EligibleProvider } from '../../core/route/route.js';
import { type AbortWatched, abortWatch } from '../../engine/confirmation/waiters.js';
import type { PaymentFlow } from '../../engine/options.js';
import {
  budget,
  type CallContext,
  type Choice,
  type Delivery,
  type Interaction,
} from '../../engine/pipeline/context.js';
import { choiceQuestion, formLinkMessage, urlConsentMessage } from '../messages.js';
import type { ToolExtra } from '../subject.js';
import { choiceSchema } from './choice-schema.js';

type FormSchema = Extract<
  Parameters<McpServer['server']['elicitInput']>[0],
  { mode?: 'form' }
>['requestedSchema'];

const PAID_FORM: FormSchema = {
  type: 'object',
  properties: { paid: { type: 'boolean', title: 'I have completed the payment', default: true } },
};

const answer = z.object({ method: z.string(), remember: z.boolean().optional() });

/**
 * Live elicitation over a connection: a form to choose the method, URL mode to open the link
 * (or, with `flow: 'elicitation'`, the opt-in form that carries the link for form-only clients).
 */
export function liveInteraction(
  server: McpServer,
  extra: ToolExtra,
  settings: { flow: PaymentFlow; choiceMs: number; paymentWaitMs: number },
  logger: Logger,
): Interaction {
  return new LiveInteraction(server, extra, settings, elicitationLogger(logger));
}

/** `payrouter:elicitation`, made once per router logger: calls only hold a reference to it. */
const elicitationLoggers = new WeakMap<Logger, Logger>();
function elicitationLogger(root: Logger): Logger {
  let logger = elicitationLoggers.get(root);
  if (logger === undefined) {
    logger = namespaced(root, 'elicitation');
    elicitationLoggers.set(root, logger);
  }
  return logger;
}

/** A class, not closures: a call waiting minutes for its payment holds one small object. */
class LiveInteraction implements Interaction {
  constructor(
    private readonly server: McpServer,
    private readonly extra: ToolExtra,
    private readonly settings: { flow: PaymentFlow; choiceMs: number; paymentWaitMs: number },
    private readonly logger: Logger,
  ) {}

  async chooseMethod(
    ctx: CallContext,
    intent: Parameters<Interaction['chooseMethod']>[1],
    eligible: readonly EligibleProvider[],
  ): Promise<Choice> {
    if (!ctx.client.form) return { kind: 'deferred' };
    let result: Awaited<ReturnType<McpServer['server']['elicitInput']>>;
    this.logger.debug('method choice asked', {
      intentId: intent.id,
      methods: eligible.map((e) => e.providerId),
    });
    try {
      result = await this.#elicit(
        { mode: 'form', message: choiceQuestion(intent), requestedSchema: choiceSchema(eligible, true) },
        ctx,
        this.settings.choiceMs,
      );
    } catch (error) {
      // Unanswered in time, or the client went away: nobody chose, so nothing is created.
      if (!ctx.signal.aborted) this.logger.debug('method choice got no answer', { error });
      return { kind: 'deferred' };
    }
    const content = answer.safeParse(result.content ?? {});
    const chosen = content.success ? eligible.find((e) => e.providerId === content.data.method) : undefined;
    this.logger.debug('method choice answered', {
      intentId: intent.id,
      action: result.action,
      ...(result.action === 'accept' ? { method: chosen?.providerId ?? null } : {}),
    });
    if (result.action === 'decline') return { kind: 'declined' };
    if (result.action !== 'accept') return { kind: 'cancelled' };
    // An accepted answer naming no offered method chose nothing we can act on.
    if (!content.success || chosen === undefined) return { kind: 'deferred' };
    return { kind: 'chosen', providerId: chosen.providerId, remember: content.data.remember === true };
  }

  async deliver(
    ctx: CallContext,
    intent: Parameters<Interaction['deliver']>[1],
    link: Parameters<Interaction['deliver']>[2],
  ): Promise<Delivery> {
    const { settings } = this;
    const viaUrl = settings.flow !== 'two_step' && ctx.client.url;
    const viaForm = !viaUrl && settings.flow === 'elicitation' && ctx.client.form;
    if ((!viaUrl && !viaForm) || link.url === '') return 'deferred';
    this.logger.debug('payment link sent', { intentId: intent.id, mode: viaUrl ? 'url' : 'form' });
    try {
      const result = viaUrl
        ? await this.#elicit(
            {
              mode: 'url',
              message: urlConsentMessage(intent, link.label),
              url: link.url,
              elicitationId: link.deliveryId,
            },
            ctx,
            settings.choiceMs,
          )
        : await this.#elicit(
            {
              mode: 'form',
              message: formLinkMessage(intent, link.label, link.url),
              requestedSchema: PAID_FORM,
            },
            ctx,
            settings.paymentWaitMs + settings.choiceMs,
          );
      this.logger.debug('payment link answered', { intentId: intent.id, action: result.action });
      if (result.action === 'accept') return 'accepted';
      return result.action === 'decline' ? 'declined' : 'cancelled';
    } catch (error) {
      if (!ctx.signal.aborted)
        this.logger.warn('link elicitation failed; returning the payment link', { error });
      return 'deferred';
    }
  }

  async completed(ctx: CallContext, link: Parameters<NonNullable<Interaction['completed']>>[1]) {
    if (this.settings.flow === 'two_step' || !ctx.client.url) return;
    await this.server.server
      .createElicitationCompletionNotifier(link.deliveryId, { relatedRequestId: this.extra.requestId })()
      .catch(() => {});
  }

  /**
   * One elicitation, aborted with the call (within ABORT_CHECK_MS). The SDK leaves its abort
   * listener (and with it the whole finished request) on the signal it is given: it gets a signal
   * of its own, so a call that goes on to wait for its payment keeps nothing.
   */
  async #elicit(
    params: Parameters<McpServer['server']['elicitInput']>[0],
    ctx: CallContext,
    stepMs: number,
  ): Promise<Awaited<ReturnType<McpServer['server']['elicitInput']>>> {
    const own = new AbortController();
    // Watched, not listened to: a listener would leave the signal's event tables behind.
    const watched: AbortWatched = {
      watchedSignal: ctx.signal,
      callerAborted: () => own.abort(ctx.signal.reason),
    };
    if (ctx.signal.aborted) watched.callerAborted();
    else abortWatch.add(watched);
    try {
      return await this.server.server.elicitInput(params, {
        relatedRequestId: this.extra.requestId,
        signal: own.signal,
        timeout: budget(ctx, stepMs),
      });
    } finally {
      abortWatch.delete(watched);
    }
  }
}

/** For clients without elicitation (and `flow: 'two_step'`): everything goes in the result. */
export const resultOnlyInteraction: Interaction = {
  async chooseMethod() {
    return { kind: 'deferred' };
  },
  async deliver() {
    return 'deferred';
  },
};
