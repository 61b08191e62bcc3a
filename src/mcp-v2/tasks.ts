import { CLIENT_CAPABILITIES_META_KEY, type ServerContext } from '@modelcontextprotocol/server';
import { z } from 'zod';
import { isFinalStatus } from '../core/intent/status.js';
import { liveAttempt } from '../core/intent/transitions.js';
import type { Outcome } from '../engine/pipeline/outcome.js';
import type { RouterCore } from '../engine/runtime.js';
import { type PresentedTool, presentResult } from '../mcp/present.js';

/** The Tasks extension of protocol 2026-07-28: work that outlives a request. */
export const TASKS_EXTENSION = 'io.modelcontextprotocol/tasks';
export const TASK_METHODS = ['tasks/get', 'tasks/update', 'tasks/cancel'] as const;

/** How often a client should ask about a task waiting for its payment. */
const POLL_INTERVAL_MS = 2_000;

/** `tasks/get`, `tasks/update`, `tasks/cancel` params: the task id (answers of an update are read from the request). */
export const taskParamsSchema = z.looseObject({ taskId: z.string().min(1).max(4096) });

/** Whether this request (never an earlier one) declared the Tasks extension. */
export function declaresTasks(ctx: ServerContext): boolean {
  const envelope = ctx.mcpReq.envelope as Record<string, unknown> | undefined;
  const caps = envelope?.[CLIENT_CAPABILITIES_META_KEY] as
    | { extensions?: Record<string, unknown> }
    | undefined;
  return caps?.extensions?.[TASKS_EXTENSION] !== undefined;
}

export type TaskStatus = 'working' | 'input_required' | 'completed' | 'cancelled' | 'failed';

/** A task as `tasks/get` and the task-creating `tools/call` show it. */
export interface TaskJson {
  [key: string]: unknown;
  taskId: string;
  status: TaskStatus;
  statusMessage?: string;
  createdAt: string;
  lastUpdatedAt: string;
  ttlMs: number | null;
  pollIntervalMs?: number;
  result?: Record<string, unknown>;
  error?: { code: number; message: string };
}

/**
 * The task a payment's outcome makes: `working` while the payment is open (or paid and running),
 * `completed` with the tool's result (an error result included), `cancelled` when the payment
 * ended unpaid (canceled, or its link expired), `failed` when it ended otherwise.
 */
export function taskOf(
  rt: RouterCore,
  tool: PresentedTool,
  taskId: string,
  createdAt: number,
  outcome: Outcome,
): TaskJson {
  const now = Date.now();
  const intent = 'intent' in outcome ? outcome.intent : undefined;
  const base = {
    taskId,
    createdAt: new Date(createdAt).toISOString(),
    lastUpdatedAt: new Date(Math.max(createdAt, intent?.updatedAt ?? createdAt)).toISOString(),
    ttlMs: intent ? Math.max(0, intent.expiresAt - now) : null,
  };
  const text = () => {
    const content = presentResult(rt, tool, outcome).content as Array<{ type: string; text?: string }>;
    return content.map((c) => c.text ?? '').join('\n');
  };
  switch (outcome.kind) {
    case 'ran':
    case 'tool_failed':
      return { ...base, status: 'completed', result: presentResult(rt, tool, outcome) };
    case 'stopped':
      return { ...base, status: 'cancelled', statusMessage: text() };
    case 'ended':
      // Ended unpaid, by tasks/cancel (a provider may report its withdrawn link as expired) or by
      // the link's expiry: the task was stopped and nothing was charged; the message says which.
      return outcome.status === 'canceled' || outcome.status === 'expired'
        ? { ...base, status: 'cancelled', statusMessage: text() }
        : { ...base, status: 'failed', error: { code: -32000, message: text() } };
    case 'payment_required':
    case 'input_required': {
      const open = intent !== undefined && !isFinalStatus(intent.status);
      const live = intent ? liveAttempt(intent) : undefined;
      if (open && (intent.status === 'paid' || intent.status === 'authorized' || live !== undefined))
        return {
          ...base,
          status: 'working',
          statusMessage:
            intent.status === 'paid' || intent.status === 'authorized'
              ? `Paid: "${tool.name}" is running.`
              : `Waiting for the payment of "${tool.name}" at the link you opened.`,
          pollIntervalMs: POLL_INTERVAL_MS,
        };
      return { ...base, status: 'failed', error: { code: -32000, message: text() } };
    }
    default:
      return { ...base, status: 'failed', error: { code: -32000, message: text() } };
  }
}
