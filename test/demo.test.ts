// The newcomer's first steps, run as they would run them: `npm run demo` and `npx payrouter-sandbox`.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO_ROOT, run } from './support/tools.js';

const TSX = ['--import', 'tsx'];

describe('npm run demo', () => {
  it('prints the three paid calls and exits 0 by itself', async () => {
    const demo = await run(process.execPath, [...TSX, 'scripts/demo.ts'], { timeoutMs: 45_000 });
    expect(demo.code, `${demo.stdout}\n${demo.stderr}`).toBe(0);
    expect(demo.stderr).not.toMatch(/failed|error/i);
    const out = demo.stdout;

    // 1. One cent, straight to Walleot through URL mode.
    const first = out.slice(out.indexOf('━━ 1.'), out.indexOf('━━ 2.'));
    expect(first).toContain('User → word_count({"text":"the quick brown fox"})');
    expect(first).toMatch(/Server asks \(URL mode\): Pay \$0\.01 for "word_count" with Walleot balance/);
    expect(first).toContain('presses "Pay $0.01" on the Walleot sandbox checkout page');
    expect(first).toContain('Tool result: 4 words');
    expect(first).toMatch(/Paid: \$0\.01 with Walleot balance/);
    expect(first).not.toContain('Server asks (form)');

    // 2. $25.00: the user is asked, picks the card, pays on the Stripe checkout.
    const second = out.slice(out.indexOf('━━ 2.'), out.indexOf('━━ 3.'));
    expect(second).toContain('Server asks (form): "market_report" costs $25.00. How would you like to pay?');
    expect(second).toContain('( ) Walleot balance: instant');
    expect(second).toContain('( ) Card (Stripe Checkout)');
    expect(second).toMatch(/User picks: Card \(Stripe Checkout\)/);
    expect(second).toMatch(/Server asks \(URL mode\): Pay \$25\.00 for "market_report" with Card/);
    expect(second).toContain('on the Stripe sandbox checkout page');
    expect(second).toContain('Tool result: Market report on coffee: demand is up, supply is flat.');
    expect(second).toMatch(/Paid: \$25\.00 with Card \(Stripe Checkout\)/);

    // 3. No elicitation: the payment-required text, paying, confirm_payment.
    const third = out.slice(out.indexOf('━━ 3.'), out.indexOf('━━ 4.'));
    expect(third).toContain('User → process_data({"data":"hello"})');
    expect(third).toContain('| Payment required: $0.25 for "process_data", paid with Walleot balance.');
    expect(third).toMatch(/\| Open this link to pay: http:\/\/127\.0\.0\.1:\d+\/checkout\//);
    expect(third).toMatch(/User → confirm_payment\(\{"payment_id":"pay_[\w-]+"\}\)/);
    expect(third).toContain('Tool result: Processed: hello');
    expect(third).toMatch(/Paid: \$0\.25 with Walleot balance/);
    expect(out).toContain('Sandbox payments: 2 Walleot, 1 Stripe.');

    // 4. A scripted agent pays by itself with x402: offer, signed retry, run, settlement.
    const fourth = out.slice(out.indexOf('━━ 4.'));
    expect(fourth).toMatch(/x402 offer: 10000 atomic USDC \(\$0\.01\) on eip155:84532/);
    expect(fourth).toContain('_meta["x402/payment"]');
    expect(fourth).toContain('Tool result: 5 words');
    expect(fourth).toMatch(/Settled after the run: transaction 0x[0-9a-f]{64}/);
    expect(fourth).toContain('Agent paid $0.01 by itself; the tool ran once.');
    // No private key of a test wallet is ever printed: the one 32-byte hex value is the transaction.
    expect(out.match(/0x[0-9a-f]{64}/gi)).toHaveLength(1);
  });
});

describe('payrouter-sandbox (src/sandbox/cli.ts)', () => {
  const children: ChildProcessWithoutNullStreams[] = [];
  const blockers: Server[] = [];
  afterEach(async () => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
    await Promise.all(blockers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
  });

  function startCli(args: string[]) {
    const child = spawn(process.execPath, [...TSX, 'src/sandbox/cli.ts', ...args], { cwd: REPO_ROOT });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
    });
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    return {
      child,
      exited,
      output: () => ({ stdout, stderr }),
      /** Resolves with stdout once the banner is complete. */
      ready: async () => {
        await expect
          .poll(() => stdout.includes('Ctrl-C to stop') || child.exitCode !== null, {
            timeout: 20_000,
            interval: 50,
          })
          .toBe(true);
        return stdout;
      },
    };
  }

  it('serves both stand-ins, prints how to reach them, and stops cleanly on SIGTERM', async () => {
    const cli = startCli(['--port', '0']);
    const banner = await cli.ready();
    const walleotBase = /base URL:\s+(http:\/\/127\.0\.0\.1:\d+\/v1)/.exec(banner)?.[1];
    const walleotKey = /API key:\s+(sk_test_walleot\S*)/.exec(banner)?.[1];
    const stripePort = /port:\s+(\d+)/.exec(banner)?.[1];
    const stripeKey = /API key:\s+(sk_test_stripe\S*)/.exec(banner)?.[1];
    expect(walleotBase, banner).toBeDefined();
    expect(stripePort, banner).toBeDefined();
    expect(banner).toMatch(/webhook secret:\s+whsec_/);

    // The printed values work: a Walleot session and a Stripe Checkout session.
    const walleot = await fetch(`${walleotBase}/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${walleotKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ amount: 25, currency: 'usd', description: 'cli test' }),
    });
    expect(walleot.status).toBe(200);
    expect(await walleot.json()).toMatchObject({ sessionId: expect.any(String), url: expect.any(String) });
    const stripe = await fetch(`http://127.0.0.1:${stripePort}/v1/checkout/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stripeKey}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        mode: 'payment',
        'line_items[0][price_data][currency]': 'usd',
        'line_items[0][price_data][unit_amount]': '2500',
        'line_items[0][price_data][product_data][name]': 'Report',
        'line_items[0][quantity]': '1',
        success_url: 'http://127.0.0.1/ok',
      }).toString(),
    });
    expect(stripe.status).toBe(200);
    expect(await stripe.json()).toMatchObject({ object: 'checkout.session', status: 'open' });

    cli.child.kill('SIGTERM');
    expect(await cli.exited).toBe(0);
    expect(cli.output().stdout).toContain('Sandbox stopped.');
    await expect(fetch(`${walleotBase}/sessions/x`)).rejects.toThrow();
  });

  it('a busy port is a clear error, not a stack trace', async () => {
    const blocker = createServer();
    blockers.push(blocker);
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    const cli = startCli(['--port', String(port)]);
    expect(await cli.exited).toBe(1);
    expect(cli.output().stderr).toContain(`port ${port} or ${port + 1} is already in use`);
  });

  it('rejects a bad --port with usage help', async () => {
    const cli = startCli(['--port', 'abc']);
    expect(await cli.exited).toBe(2);
    expect(cli.output().stderr).toContain('--port must be a number');
  });
});
