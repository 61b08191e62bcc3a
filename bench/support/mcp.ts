import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

/** A tools/call with the SDK client, typed as the CallToolResult it is for tools. */
export async function callTool(
  client: Client,
  name: string,
  args: Record<string, unknown>,
  timeoutMs = 120_000,
): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args }, undefined, {
    timeout: timeoutMs,
  })) as CallToolResult;
}

export const quietLogger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  // As the default logger without DEBUG says for debug and info: a dropped line costs nothing.
  isLevelEnabled: () => false,
};

/**
 * The subject a benchmark call pays as, sent in the request's `_meta`: default limits (20 open
 * payments per subject) are on in every bench, so benches of many pending payments give each its
 * own payer, as many real users would be. Pass `benchSubject` as the router's `subject` option.
 */
export const BENCH_SUBJECT_META = 'bench/subject';

export function benchSubject(extra: { _meta?: Record<string, unknown> }): string | undefined {
  const subject = extra._meta?.[BENCH_SUBJECT_META];
  return typeof subject === 'string' ? subject : undefined;
}

/** A tools/call paid as `subject` (see benchSubject). */
export async function callToolAs(
  client: Client,
  subject: string,
  name: string,
  args: Record<string, unknown>,
  timeoutMs = 120_000,
): Promise<CallToolResult> {
  return (await client.callTool(
    { name, arguments: args, _meta: { [BENCH_SUBJECT_META]: subject } },
    undefined,
    {
      timeout: timeoutMs,
    },
  )) as CallToolResult;
}
