// `npx payrouter-sandbox [--port 4010]`: both stand-ins on 127.0.0.1 until Ctrl-C (or SIGTERM).
// Output goes to stdout on purpose: printing the URLs and sandbox keys is this program's job.
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { type Sandbox, startSandbox } from '../sandbox.js';

const DEFAULT_PORT = 4010;

const USAGE = `Usage: payrouter-sandbox [--port <port>]

Starts local stand-ins of the Walleot API (on <port>, default ${DEFAULT_PORT}) and the Stripe API
(on <port>+1) with sandbox checkout pages. --port 0 picks two free ports.
Stops on Ctrl-C or SIGTERM.
`;

const portSchema = z.coerce.number().int().min(0).max(65_534);

function fail(message: string, code = 2): never {
  process.stderr.write(`payrouter-sandbox: ${message}\n`);
  process.exit(code);
}

function readPort(argv: string[]): number | 'help' {
  let values: { port?: string | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { port: { type: 'string', short: 'p' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (error) {
    fail(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
  }
  if (values.help) return 'help';
  if (values.port === undefined) return DEFAULT_PORT;
  const port = portSchema.safeParse(values.port);
  if (!port.success) fail(`--port must be a number from 0 to 65534, got "${values.port}"`);
  return port.data;
}

function describe(sandbox: Sandbox): string {
  const { walleot, stripe } = sandbox;
  return `payrouter sandbox: local stand-ins of the Walleot and Stripe APIs. No real money moves.

Walleot
  base URL:        ${walleot.baseUrl}
  API key:         ${walleot.apiKey}
  provider:        new WalleotProvider({ apiKey: '${walleot.apiKey}', baseUrl: '${walleot.baseUrl}' })

Stripe
  host:            ${stripe.host}
  port:            ${stripe.port}  (protocol http)
  API key:         ${stripe.apiKey}
  webhook secret:  ${stripe.webhookSecret}
  provider:        new StripeProvider({ apiKey: '${stripe.apiKey}', webhookSecret: '${stripe.webhookSecret}',
                     stripe: { host: '${stripe.host}', port: ${stripe.port}, protocol: 'http' } })

Payment links open sandbox checkout pages (${walleot.origin}/checkout/..., ${stripe.origin}/checkout/...)
with Pay and Cancel buttons. Ctrl-C to stop.
`;
}

async function main(): Promise<void> {
  const port = readPort(process.argv.slice(2));
  if (port === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  let sandbox: Sandbox;
  try {
    sandbox = await startSandbox(port === 0 ? {} : { walleotPort: port, stripePort: port + 1 });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'EADDRINUSE')
      fail(`port ${port} or ${port + 1} is already in use; pass --port <another port> (or --port 0)`, 1);
    fail(`could not start: ${error instanceof Error ? error.message : String(error)}`, 1);
  }
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      // A second Ctrl-C while closing: stop waiting.
      process.exit(130);
    }
    stopping = true;
    process.stdout.write(`\n${signal}: stopping the sandbox…\n`);
    sandbox.close().then(
      () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        process.stdout.write('Sandbox stopped.\n');
      },
      (error: unknown) =>
        fail(`error while stopping: ${error instanceof Error ? error.message : String(error)}`, 1),
    );
  };
  // Handlers first: whoever reads the banner may signal at once.
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.stdout.write(describe(sandbox));
}

main().catch((error: unknown) => fail(error instanceof Error ? error.message : String(error), 1));
