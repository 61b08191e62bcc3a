import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../src/sandbox.js';

/**
 * DESIGN §5.8: the main entry loads no provider SDK, and a provider loads its SDK on its first
 * request, not when it is built. Each case runs the built package in a child process preloaded
 * with test/fixtures/record-loads.mjs, which writes every module file loaded (ESM through a public
 * module hook, CommonJS through require.cache) to a log; `__payrouterMark(text)` adds a separator.
 */

const run = promisify(execFile);
const repo = resolve('.');
const dist = (file: string) => JSON.stringify(join(repo, 'dist', file));
const recorder = join(repo, 'test/fixtures/record-loads.mjs');
const SDK_PATH = /[\\/]node_modules[\\/](stripe|undici)[\\/]/;

let dir: string;
let sandbox: Sandbox;
beforeAll(async () => {
  if (!existsSync('dist/index.js') || !existsSync('dist/index.cjs')) {
    throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
  }
  dir = mkdtempSync(join(tmpdir(), 'payrouter-loads-'));
  sandbox = await startSandbox();
});
afterAll(async () => {
  await sandbox?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let runs = 0;
/** Run `code` (CommonJS, or ESM with `esm`) and return the log split at the marks. */
async function loadsOf(
  code: string,
  esm: boolean,
): Promise<{ sections: Map<string, string[]>; all: string[] }> {
  const log = join(dir, `loads-${++runs}.log`);
  await run(process.execPath, ['--import', recorder, ...(esm ? ['--input-type=module'] : []), '-e', code], {
    cwd: repo,
    env: {
      PATH: process.env.PATH ?? '',
      PAYROUTER_LOAD_LOG: log,
      WALLEOT_BASE_URL: sandbox.walleot.baseUrl,
      WALLEOT_KEY: sandbox.walleot.apiKey,
      STRIPE_PORT: String(sandbox.stripe.port),
      STRIPE_KEY: sandbox.stripe.apiKey,
    },
  });
  const sections = new Map<string, string[]>();
  let current = 'start';
  const all: string[] = [];
  for (const line of readFileSync(log, 'utf8').split('\n')) {
    if (line === '') continue;
    if (line.startsWith('--- ')) {
      current = line.slice(4);
      continue;
    }
    all.push(line);
    sections.set(current, [...(sections.get(current) ?? []), line]);
  }
  return { sections, all };
}

const sdkFiles = (files: readonly string[] | undefined) => (files ?? []).filter((f) => SDK_PATH.test(f));

describe('the main entry loads no provider SDK', () => {
  it("require('payrouter') (dist/index.cjs) loads no file of stripe or undici", async () => {
    const { all } = await loadsOf(`require(${dist('index.cjs')}); __payrouterMark('loaded');`, false);
    expect(all.some((f) => f.endsWith(join('dist', 'index.cjs')))).toBe(true);
    expect(sdkFiles(all)).toEqual([]);
  });

  it("import 'payrouter' (dist/index.js) loads no file of stripe or undici", async () => {
    const { all } = await loadsOf(`await import(${dist('index.js')}); __payrouterMark('loaded');`, true);
    expect(all.some((f) => f.endsWith(join('dist', 'index.js')))).toBe(true);
    expect(sdkFiles(all)).toEqual([]);
  });

  it('a router built from the mapping form { walleot, stripe } loads no SDK either', async () => {
    const code = `
      const { PayRouter } = await import(${dist('index.js')});
      const { McpServer } = await import('@modelcontextprotocol/sdk/server/mcp.js');
      const router = new PayRouter(new McpServer({ name: 's', version: '1' }), {
        providers: { walleot: { apiKey: 'sk_test_w' }, stripe: { apiKey: 'sk_test_s' } },
        logger: { debug() {}, info() {}, warn() {}, error() {} },
      });
      __payrouterMark('built');
      await router.close();`;
    const { all } = await loadsOf(code, true);
    expect(sdkFiles(all)).toEqual([]);
  });
});

describe('providers load their SDK on the first request, not when built', () => {
  const script = (load: string) => `
    const { WalleotProvider, StripeProvider } = ${load};
    const quiet = { debug() {}, info() {}, warn() {}, error() {} };
    const walleot = new WalleotProvider({ apiKey: process.env.WALLEOT_KEY, baseUrl: process.env.WALLEOT_BASE_URL, logger: quiet });
    const stripe = new StripeProvider({
      apiKey: process.env.STRIPE_KEY,
      stripe: { host: '127.0.0.1', port: Number(process.env.STRIPE_PORT), protocol: 'http', maxNetworkRetries: 0 },
      logger: quiet,
    });
    __payrouterMark('constructed');
    (async () => {
      await walleot.getPayment('sess_missing').catch(() => {});
      await stripe.getPayment('cs_test_missing').catch(() => {});
      __payrouterMark('requested');
      await walleot.close();
    })();`;

  for (const [format, load, esm] of [
    ['CommonJS', `require(${dist('providers.cjs')})`, false],
    ['ESM', `await import(${dist('providers.js')})`, true],
  ] as const) {
    it(`${format}: nothing of stripe or undici before the first request; both after it`, async () => {
      const { sections } = await loadsOf(script(load), esm);
      expect(sdkFiles(sections.get('start'))).toEqual([]);
      const after = sdkFiles(sections.get('constructed'));
      expect(after.some((f) => /[\\/]node_modules[\\/]stripe[\\/]/.test(f))).toBe(true);
      expect(after.some((f) => /[\\/]node_modules[\\/]undici[\\/]/.test(f))).toBe(true);
    });
  }
});
