// The official MCP Inspector CLI (under Node 22) as the client: it declares no elicitation and
// opens a new session on every run, so the payment follows the user through a bearer token.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type SandboxServer, startSandboxServer } from '../scripts/sandbox-server.js';
import { silentLogger } from '../src/index.js';
import { inspectorCli, node22, type RunResult, runInspector } from './support/tools.js';

const TOKEN = 'inspector-test-token';
const USER = 'inspector-user';

let server: SandboxServer;
let home: string;
const toolRuns: string[] = [];

beforeAll(async () => {
  // Missing tools fail here with the command that installs them.
  node22();
  inspectorCli();
  // The Inspector keeps state under HOME; give it a throwaway one.
  home = mkdtempSync(join(tmpdir(), 'payrouter-inspector-'));
  server = await startSandboxServer({
    port: 0,
    sandboxPort: 0,
    bearerTokens: { [TOKEN]: USER },
    logger: silentLogger,
    router: {
      // A confirm_payment before paying waits this long for the payment before answering "pending".
      timeouts: { paymentWaitMs: 1000 },
      confirmation: { pendingTtlMs: 50, poll: { initialMs: 50, maxMs: 200 } },
      hooks: { onToolRun: (event) => void toolRuns.push(`${event.tool}:${event.subject}`) },
    },
  });
});

afterAll(async () => {
  await server?.close();
  if (home) rmSync(home, { recursive: true, force: true });
});

function inspector(args: string[], auth: 'user' | 'none' = 'user'): Promise<RunResult> {
  const headers = auth === 'user' ? ['--header', `Authorization: Bearer ${TOKEN}`] : [];
  return runInspector([server.mcpUrl, '--transport', 'http', ...headers, '--format', 'json', ...args], {
    env: { HOME: home },
  });
}

const textResult = z.object({
  content: z.array(z.object({ type: z.string(), text: z.string().optional() })),
  isError: z.boolean().optional(),
  _meta: z.record(z.string(), z.unknown()).optional(),
});
const paymentSchema = z.object({
  payment_id: z.string(),
  status: z.string(),
  amount: z.string(),
  currency: z.string(),
  provider: z.string().nullable(),
  payment_url: z.string(),
});

/** `--format json` prints one object on stdout: `{ "result": <the MCP result> }`. */
function resultOf<T>(run: RunResult, schema: z.ZodType<T>): T {
  try {
    return z.object({ result: schema }).parse(JSON.parse(run.stdout)).result;
  } catch (error) {
    throw new Error(
      `Inspector stdout is not the expected result (exit ${run.code}): ${String(error)}\nstdout: ${run.stdout}\nstderr: ${run.stderr}`,
    );
  }
}

function parseResult(run: RunResult) {
  return resultOf(run, textResult);
}

const textOf = (result: z.infer<typeof textResult>) => result.content.map((c) => c.text ?? '').join('\n');

/**
 * The user in a browser: the hosted pay page of a one-method payment whose provider payment exists
 * goes straight to that provider's checkout; there they press Pay.
 */
async function payThroughHostedPage(paymentUrl: string): Promise<void> {
  const page = await fetch(paymentUrl, { redirect: 'manual' });
  expect(page.status).toBe(303);
  const checkout = page.headers.get('location');
  expect(checkout).toMatch(/\/checkout\//);
  const paid = await fetch(`${checkout}/pay`, { method: 'POST', redirect: 'manual' });
  expect(paid.status).toBeLessThan(400);
}

describe('MCP Inspector CLI against the sandbox server', () => {
  it('tools/list shows the paid tools with their price, and confirm_payment', async () => {
    const run = await inspector(['--method', 'tools/list']);
    expect(run.code, run.stderr).toBe(0);
    const listed = resultOf(
      run,
      z.object({
        tools: z.array(
          z.object({
            name: z.string(),
            description: z.string().optional(),
            _meta: z.record(z.string(), z.unknown()).optional(),
          }),
        ),
      }),
    );
    const names = listed.tools.map((t) => t.name);
    expect(names).toEqual(
      expect.arrayContaining(['process_data', 'market_report', 'word_count', 'confirm_payment']),
    );
    const processData = listed.tools.find((t) => t.name === 'process_data');
    expect(processData?._meta?.['payrouter/price']).toMatchObject({ amount: '0.25', currency: 'USD' });
    expect(listed.tools.find((t) => t.name === 'confirm_payment')?.description).toBeTruthy();
  });

  // Five Inspector runs, each a new Node 22 process: give a loaded CI machine room.
  it('a paid call exits 5 with the payment-required result; after paying, confirm_payment in a new run returns the output', {
    timeout: 60_000,
  }, async () => {
    const first = await inspector([
      '--method',
      'tools/call',
      '--tool-name',
      'process_data',
      '--tool-args-json',
      JSON.stringify({ data: 'from the inspector' }),
    ]);
    expect(first.code, first.stderr).toBe(5);
    expect(first.stderr).toContain('tool_is_error');
    const required = parseResult(first);
    expect(required.isError).toBe(true);
    const payment = paymentSchema.parse(required._meta?.['payrouter/payment']);
    expect(payment).toMatchObject({
      status: 'pending',
      amount: '0.25',
      currency: 'USD',
      provider: 'walleot',
    });
    expect(payment.payment_url).toBe(`${server.publicUrl}/pay/${payment.payment_id}`);
    expect(textOf(required)).toContain('$0.25');
    expect(textOf(required)).toContain(payment.payment_url);
    expect(toolRuns).toHaveLength(0);

    // Another run before paying: still pending, nothing runs.
    const early = await inspector([
      '--method',
      'tools/call',
      '--tool-name',
      'confirm_payment',
      '--tool-args-json',
      JSON.stringify({ payment_id: payment.payment_id }),
    ]);
    expect(early.code, early.stderr).toBe(5);
    expect(paymentSchema.parse(parseResult(early)._meta?.['payrouter/payment']).status).toBe('pending');

    await payThroughHostedPage(payment.payment_url);

    // Without the token the second run is another session, another payer: the id unlocks nothing.
    const stranger = await inspector(
      [
        '--method',
        'tools/call',
        '--tool-name',
        'confirm_payment',
        '--tool-args-json',
        JSON.stringify({ payment_id: payment.payment_id }),
      ],
      'none',
    );
    expect(stranger.code, stranger.stderr).toBe(5);
    expect(textOf(parseResult(stranger))).toContain('Unknown payment_id');
    expect(toolRuns).toHaveLength(0);

    const confirmed = await inspector([
      '--method',
      'tools/call',
      '--tool-name',
      'confirm_payment',
      '--tool-args-json',
      JSON.stringify({ payment_id: payment.payment_id }),
    ]);
    expect(confirmed.code, confirmed.stderr).toBe(0);
    const result = parseResult(confirmed);
    expect(result.isError).toBeFalsy();
    expect(textOf(result)).toBe('Processed: from the inspector');
    expect(paymentSchema.parse(result._meta?.['payrouter/payment']).status).toBe('paid');
    expect(toolRuns).toEqual([`process_data:user:${USER}`]);

    // Calling the tool again with the same arguments returns the stored result; it does not run twice.
    const repeat = await inspector([
      '--method',
      'tools/call',
      '--tool-name',
      'confirm_payment',
      '--tool-args-json',
      JSON.stringify({ payment_id: payment.payment_id }),
    ]);
    expect(repeat.code, repeat.stderr).toBe(0);
    expect(textOf(parseResult(repeat))).toBe('Processed: from the inspector');
    expect(toolRuns).toHaveLength(1);
  });

  it('without a token: pay in one run, confirm in a new run (another session): the output, once', {
    timeout: 60_000,
  }, async () => {
    const callTool = (name: string, args: Record<string, unknown>) =>
      inspector(
        ['--method', 'tools/call', '--tool-name', name, '--tool-args-json', JSON.stringify(args)],
        'none',
      );
    const first = await callTool('process_data', { data: 'anonymous' });
    expect(first.code, first.stderr).toBe(5);
    const payment = paymentSchema.parse(parseResult(first)._meta?.['payrouter/payment']);
    const before = toolRuns.length;
    await payThroughHostedPage(payment.payment_url!);

    // A one-shot client is a new session every run: the payment_id it was given is what it presents.
    const confirmed = await callTool('confirm_payment', { payment_id: payment.payment_id });
    expect(confirmed.code, confirmed.stderr).toBe(0);
    expect(textOf(parseResult(confirmed))).toBe('Processed: anonymous');
    const again = await callTool('confirm_payment', { payment_id: payment.payment_id });
    expect(textOf(parseResult(again))).toBe('Processed: anonymous');
    expect(toolRuns.slice(before)).toHaveLength(1);
    expect(toolRuns.at(-1)).toMatch(/^process_data:session:/);
  });

  it('an unknown bearer token is refused before any MCP message', async () => {
    const run = await runInspector(
      [
        server.mcpUrl,
        '--transport',
        'http',
        '--header',
        'Authorization: Bearer not-a-known-token',
        '--format',
        'json',
        '--method',
        'tools/list',
      ],
      { env: { HOME: home } },
    );
    // The 401 sends the Inspector into OAuth, which it cannot do without a terminal: auth_required.
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('auth_required');
    expect(run.stdout).not.toContain('process_data');
  });
});
