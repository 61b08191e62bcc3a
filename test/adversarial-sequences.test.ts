// Model-based attack on the router: fast-check command sequences of paid calls, retries, concurrent
// duplicates, confirm_payment (own, someone else's, forged), the hosted pay page, payments and
// failures at the sandbox, Stripe webhooks (replayed, stale, tampered, out of order) and provider
// faults, over memoryStore and redisStore. After every step the invariants of DESIGN.md §5 are
// checked against the store and the stand-ins' own books.
// Reproduce a failure with FC_SEED=<seed printed by fast-check>; FC_RUNS changes the number of
// sequences; FC_STATS=1 prints each sequence with the runs and intent states it produced.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import Stripe from 'stripe';
import { describe, expect } from 'vitest';
import { z } from 'zod';
import { canonicalJson, sha256Hex } from '../src/core/canonical-json.js';
import {
  type IntentRecord,
  memoryStore,
  type PaymentStore,
  PayRouter,
  redisStore,
  silentLogger,
} from '../src/index.js';
import { StripeProvider, WalleotProvider } from '../src/providers.js';
import type { CheckoutSessionEvent } from '../src/sandbox/stripe.js';
import type { Sandbox } from '../src/sandbox.js';
import { it, test } from './support/fixture.js';
import type { listenLate } from './support/http-world.js';
import { connectClient, paymentOf, textOf } from './support/paid-server.js';
import type { RedisServer } from './support/redis-server.js';

const SEED = Number(process.env['FC_SEED'] ?? 20_261_125);
const NUM_RUNS = Number(process.env['FC_RUNS'] ?? 30);
const MAX_COMMANDS = 30;
const SUBJECTS = ['alice', 'bob'] as const;
type Sub = (typeof SUBJECTS)[number];
/** a: Walleot only (USD); b: Stripe only (EUR); c: both can take it, so the hosted pay page asks. */
const TOOLS = {
  a: { price: { amount: '0.05', currency: 'USD' }, providers: ['walleot'] },
  b: { price: { amount: '1.00', currency: 'EUR' }, providers: undefined },
  c: { price: { amount: '0.60', currency: 'USD' }, providers: undefined },
} as const;
type ToolName = keyof typeof TOOLS;

let sandbox: Sandbox;
let redis: RedisServer;
let redisClient: Redis;
let http: Awaited<ReturnType<typeof listenLate>>;
const stripeSigner = new Stripe('sk_test_signing_only');
const publicUrl = () => `${http.origin}/payrouter`;

// The sandbox, redis-server and HTTP server are the fixture's (one per file, closed after afterAll).
test.beforeAll(async ({ sandbox: fileSandbox, redis: fileRedis, lateHttp }) => {
  [sandbox, redis, http] = [fileSandbox, fileRedis, lateHttp];
  redisClient = new Redis(redis.url, { maxRetriesPerRequest: 2 });
});
test.afterAll(() => {
  redisClient?.disconnect();
});

interface Run {
  tool: ToolName;
  x: number;
  sub: Sub;
}

/** Everything one sequence works on. */
interface Real {
  router: PayRouter;
  store: PaymentStore;
  clients: Array<{
    call: (name: string, args: Record<string, unknown>) => Promise<CallToolResult>;
    close: () => Promise<void>;
  }>;
  runs: Run[];
  /** Every intent id the store was asked to insert. */
  intentIds: Set<string>;
  /** Payment ids handed to each subject, in the order the results arrived. */
  known: Record<Sub, string[]>;
  /** The payment id the subject was last given for each call ("tool x"): the link a user would pay. */
  latest: Record<Sub, Map<string, string>>;
  publicUrl: string;
  providers: { walleot: WalleotProvider; stripe: StripeProvider };
  log: string[];
}

const expectedText = (run: Run) => `${run.tool} ${run.x} for ${run.sub}`;
const bindingOf = (tool: ToolName, x: number, sub: Sub) =>
  `${tool}|${sha256Hex(canonicalJson({ x }))}|user:${sub}`;
const bindingOfIntent = (i: IntentRecord) => `${i.binding.tool}|${i.binding.argsHash}|${i.binding.subject}`;

async function setup(storeKind: 'memory' | 'redis', webhookFlags: { duplicate: boolean; reorder: boolean }) {
  sandbox.reset();
  const base =
    storeKind === 'memory'
      ? memoryStore()
      : redisStore({
          client: redisClient,
          prefix: `seq:${Date.now()}:${Math.random().toString(36).slice(2)}:`,
        });
  const intentIds = new Set<string>();
  const store = new Proxy(base, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (property === 'insert') {
        return (record: IntentRecord) => {
          intentIds.add(record.id);
          return target.insert(record);
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  // Small timeouts, so an injected hang costs a fraction of a second.
  const providers = {
    walleot: new WalleotProvider({
      apiKey: sandbox.walleot.apiKey,
      baseUrl: sandbox.walleot.baseUrl,
      timeoutMs: 300,
      maxRetries: 1,
      logger: silentLogger,
    }),
    stripe: new StripeProvider({
      apiKey: sandbox.stripe.apiKey,
      webhookSecret: sandbox.stripe.webhookSecret,
      stripe: { ...sandbox.stripe.sdkOptions, timeout: 300, maxNetworkRetries: 1 },
      logger: silentLogger,
    }),
  };
  const runs: Run[] = [];
  const servers = SUBJECTS.map(() => new McpServer({ name: 'seq', version: '1.0.0' }));
  const router = new PayRouter(servers[0]!, {
    providers: [providers.walleot, providers.stripe],
    store,
    flow: 'two_step',
    publicUrl: publicUrl(),
    logger: silentLogger,
    timeouts: { choiceMs: 1000, paymentWaitMs: 150 },
    confirmation: { pendingTtlMs: 20, poll: { initialMs: 20, maxMs: 50 } },
  });
  http.use(router.httpHandler());
  servers.forEach((server) => {
    router.install(server);
    for (const [name, spec] of Object.entries(TOOLS) as Array<[ToolName, (typeof TOOLS)[ToolName]]>) {
      server.registerTool(
        name,
        {
          description: `Tool ${name}`,
          inputSchema: { x: z.number().int() },
          price: spec.price,
          ...(spec.providers ? { providers: [...spec.providers] } : {}),
        },
        async ({ x }, extra) => {
          const run: Run = { tool: name, x, sub: extra.authInfo?.extra?.['sub'] as Sub };
          runs.push(run);
          return { content: [{ type: 'text', text: expectedText(run) }] };
        },
      );
    }
  });
  const clients = await Promise.all(
    SUBJECTS.map(async (sub, i) => {
      const { client, close } = await connectClient(servers[i]!, {
        elicitation: 'none',
        authInfo: { token: `t-${sub}`, clientId: 'seq', scopes: [], extra: { sub } },
      });
      return {
        call: (name: string, args: Record<string, unknown>) =>
          client.callTool({ name, arguments: args }) as Promise<CallToolResult>,
        close,
      };
    }),
  );
  sandbox.stripe.setWebhookTarget({ url: `${publicUrl()}/webhooks/stripe`, ...webhookFlags });
  const real: Real = {
    router,
    store,
    clients,
    runs,
    intentIds,
    known: { alice: [], bob: [] },
    latest: { alice: new Map(), bob: new Map() },
    publicUrl: publicUrl(),
    providers,
    log: [],
  };
  return real;
}

async function teardown(real: Real) {
  await Promise.all(real.clients.map((c) => c.close()));
  await real.router.close();
  await real.store.close();
  await real.providers.walleot.close();
  sandbox.stripe.setWebhookTarget(undefined);
  await sandbox.stripe.flushWebhooks();
}

/** Remember the payment a result hands to `sub`. */
function learn(real: Real, sub: Sub, call: string | undefined, result: CallToolResult) {
  const id = paymentOf(result)?.payment_id;
  if (id === undefined) return;
  if (!real.known[sub].includes(id)) real.known[sub].push(id);
  if (call !== undefined) real.latest[sub].set(call, id);
}

async function intents(real: Real): Promise<IntentRecord[]> {
  const records = await Promise.all([...real.intentIds].map((id) => real.store.get(id)));
  return records.filter((r): r is IntentRecord => r !== undefined);
}

/** Whether the stand-in itself says this provider payment took money (and kept it). */
function paidAtProvider(providerId: string, paymentId: string): boolean {
  if (providerId === 'walleot') return sandbox.walleot.getSession(paymentId)?.status === 'paid';
  const session = sandbox.stripe.getSession(paymentId);
  return session?.payment_status === 'paid' && sandbox.stripe.getRefunds(paymentId).length === 0;
}

/** DESIGN.md §5, checked after every step. */
async function checkInvariants(real: Real) {
  await sandbox.stripe.flushWebhooks();
  const all = await intents(real);
  const byBinding = new Map<string, IntentRecord[]>();
  for (const intent of all) {
    const key = bindingOfIntent(intent);
    byBinding.set(key, [...(byBinding.get(key) ?? []), intent]);
  }
  const runsBy = new Map<string, Run[]>();
  for (const run of real.runs) {
    const key = bindingOf(run.tool, run.x, run.sub);
    runsBy.set(key, [...(runsBy.get(key) ?? []), run]);
  }
  // 1 + 2. Every run has its own paid, matching intent that ran exactly once; nothing ran otherwise.
  for (const [key, runs] of runsBy) {
    const done = (byBinding.get(key) ?? []).filter((i) => i.run === 'done');
    expect(runs.length, `runs of ${key} vs intents that ran`).toBe(done.length);
  }
  for (const intent of all) {
    expect(intent.run, `intent ${intent.id} left running`).not.toBe('running');
    if (intent.run !== 'done') continue;
    expect(['paid', 'refunded'], `intent ${intent.id} ran while ${intent.status}`).toContain(intent.status);
    expect(intent.attempts.some((a) => a.status === 'paid' || a.status === 'refunded')).toBe(true);
    // 3. The result of a paid run is stored, and it is this call's result.
    const run = real.runs.find((r) => bindingOf(r.tool, r.x, r.sub) === bindingOfIntent(intent))!;
    expect(textOf(intent.result?.result ?? {}), `stored result of ${intent.id}`).toBe(expectedText(run));
  }
  // No second charge: one intent never holds two payments that kept money, and one call never has
  // two paid intents that are both still waiting to run.
  for (const intent of all) {
    const kept = intent.attempts.filter((a) => paidAtProvider(a.providerId, a.paymentId));
    expect(kept.length, `intent ${intent.id} charged ${kept.length} times`).toBeLessThanOrEqual(1);
  }
  for (const [key, list] of byBinding) {
    const paidUnused = list.filter(
      (i) => i.run !== 'done' && i.attempts.some((a) => paidAtProvider(a.providerId, a.paymentId)),
    );
    expect(paidUnused.length, `paid but unused intents for ${key}`).toBeLessThanOrEqual(1);
  }
}

type Cmd = fc.AsyncCommand<object, Real>;

const subArb = fc.constantFrom<Sub>(...SUBJECTS);
const toolArb = fc.constantFrom<ToolName>('a', 'a', 'b', 'b', 'c');
const xArb = fc.constantFrom(1, 1, 1, 2);

class CallCmd implements Cmd {
  constructor(
    readonly sub: Sub,
    readonly tool: ToolName,
    readonly x: number,
    readonly copies: number,
  ) {}
  check = () => true;
  async run(_m: object, real: Real) {
    const client = real.clients[SUBJECTS.indexOf(this.sub)]!;
    const runsBefore = real.runs.length;
    const results = await Promise.all(
      Array.from({ length: this.copies }, () => client.call(this.tool, { x: this.x })),
    );
    for (const result of results) learn(real, this.sub, `${this.tool} ${this.x}`, result);
    for (const result of results) {
      if (!result.isError)
        expect(textOf(result)).toBe(expectedText({ tool: this.tool, x: this.x, sub: this.sub }));
      else expect(textOf(result).length).toBeGreaterThan(10);
    }
    // Identical calls sent at once are one call: one payment, never two links for it.
    const ids = new Set(results.map((r) => paymentOf(r)?.payment_id).filter((id) => id !== undefined));
    expect(ids.size, 'payments handed out for one call sent several times at once').toBeLessThanOrEqual(1);
    expect(real.runs.length - runsBefore).toBeLessThanOrEqual(1);
    await checkInvariants(real);
  }
  toString = () => `call(${this.sub}, ${this.tool}, x=${this.x}, ×${this.copies})`;
}

type ConfirmTarget = 'own' | 'other' | 'forged' | 'junk';
class ConfirmCmd implements Cmd {
  constructor(
    readonly sub: Sub,
    readonly target: ConfirmTarget,
    readonly pick: number,
    readonly method: 'walleot' | 'stripe' | undefined,
  ) {}
  check = () => true;
  async run(_m: object, real: Real) {
    const other: Sub = this.sub === 'alice' ? 'bob' : 'alice';
    // Own: the payment the user was last given for one of their calls (what they would confirm).
    const pool = this.target === 'own' ? [...real.latest[this.sub].values()] : real.known[other];
    let paymentId: string;
    if (this.target === 'forged') paymentId = `pay_${'Zz9-'.repeat(6)}`;
    else if (this.target === 'junk') paymentId = `' OR 1=1; <script>${this.pick}`;
    else if (pool.length === 0) return;
    else paymentId = pool[this.pick % pool.length]!;
    const runsBefore = real.runs.length;
    const args: Record<string, unknown> = { payment_id: paymentId };
    if (this.method !== undefined) args['method'] = this.method;
    const result = await real.clients[SUBJECTS.indexOf(this.sub)]!.call('confirm_payment', args);
    if (this.target === 'own') {
      learn(real, this.sub, undefined, result);
    } else {
      // Someone else's payment or a forged one: the same answer as for no payment, and nothing runs.
      expect(result.isError).toBe(true);
      expect(textOf(result)).toContain('Unknown payment_id');
      expect(real.runs.length).toBe(runsBefore);
    }
    await checkInvariants(real);
  }
  toString = () =>
    `confirm(${this.sub}, ${this.target}#${this.pick}${this.method ? `, ${this.method}` : ''})`;
}

/** The user acts at the provider on the link they were last given for a call. */
class ProviderCmd implements Cmd {
  constructor(
    readonly sub: Sub,
    readonly pick: number,
    readonly outcome: 'pay' | 'fail' | 'expire',
  ) {}
  check = () => true;
  async run(_m: object, real: Real) {
    const own = [...real.latest[this.sub].values()];
    const links = own.length > 0 ? own : [...real.latest[this.sub === 'alice' ? 'bob' : 'alice'].values()];
    if (links.length === 0) return;
    const intent = await real.store.get(links[this.pick % links.length]!);
    const attempt = intent?.attempts.at(-1);
    if (attempt === undefined) return;
    if (attempt.providerId === 'walleot') {
      if (sandbox.walleot.getSession(attempt.paymentId)?.status !== 'pending') return;
      const status = { pay: 'paid', fail: 'failed', expire: 'expired' } as const;
      sandbox.walleot.setStatus(attempt.paymentId, status[this.outcome]);
    } else {
      if (sandbox.stripe.getSession(attempt.paymentId)?.status !== 'open') return;
      if (this.outcome === 'pay') sandbox.stripe.pay(attempt.paymentId);
      else if (this.outcome === 'fail') sandbox.stripe.payAsync(attempt.paymentId, 'failed');
      else sandbox.stripe.lapse(attempt.paymentId);
    }
    await checkInvariants(real);
  }
  toString = () => `provider(${this.sub}#${this.pick}, ${this.outcome})`;
}

/** Choose a method on the hosted pay page (creates that provider's payment, switches from another). */
class PayPageCmd implements Cmd {
  constructor(
    readonly sub: Sub,
    readonly pick: number,
    readonly method: 'walleot' | 'stripe',
  ) {}
  check = () => true;
  async run(_m: object, real: Real) {
    const pool = real.known[this.sub];
    if (pool.length === 0) return;
    const id = pool[this.pick % pool.length]!;
    const response = await fetch(`${real.publicUrl}/pay/${id}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ method: this.method }).toString(),
      redirect: 'manual',
    });
    await response.text();
    expect([303, 400, 404, 502]).toContain(response.status);
    // The page does not hand out a new link for the call: the next result does.
    await checkInvariants(real);
  }
  toString = () => `payPage(${this.sub}#${this.pick}, ${this.method})`;
}

/** A whole user journey: call, pay the link, then confirm it / call again / both at once, twice. */
class JourneyCmd implements Cmd {
  constructor(
    readonly sub: Sub,
    readonly tool: ToolName,
    readonly x: number,
    readonly finish: 'confirm' | 'recall' | 'stampede',
  ) {}
  check = () => true;
  async run(_m: object, real: Real) {
    const client = real.clients[SUBJECTS.indexOf(this.sub)]!;
    const call = `${this.tool} ${this.x}`;
    const first = await client.call(this.tool, { x: this.x });
    learn(real, this.sub, call, first);
    let intent = await real.store.get(paymentOf(first)?.payment_id ?? '');
    if (intent !== undefined && intent.attempts.length === 0) {
      // The hosted pay page asks for a method first: take the cheapest, as the page offers it first.
      const chosen = await client.call('confirm_payment', {
        payment_id: intent.id,
        method: intent.eligible[0]!,
      });
      learn(real, this.sub, undefined, chosen);
      intent = await real.store.get(intent.id);
    }
    const attempt = intent?.attempts.at(-1);
    if (
      attempt?.providerId === 'walleot' &&
      sandbox.walleot.getSession(attempt.paymentId)?.status === 'pending'
    ) {
      sandbox.walleot.setStatus(attempt.paymentId, 'paid');
    } else if (
      attempt?.providerId === 'stripe' &&
      sandbox.stripe.getSession(attempt.paymentId)?.status === 'open'
    ) {
      sandbox.stripe.pay(attempt.paymentId);
    }
    const confirm = () =>
      client.call('confirm_payment', { payment_id: paymentOf(first)?.payment_id ?? 'none' });
    const recall = () => client.call(this.tool, { x: this.x });
    const finishing =
      this.finish === 'confirm'
        ? [confirm()]
        : this.finish === 'recall'
          ? [recall()]
          : [confirm(), recall(), confirm(), recall()];
    for (const result of await Promise.all(finishing)) {
      learn(real, this.sub, undefined, result);
      if (!result.isError)
        expect(textOf(result)).toBe(expectedText({ tool: this.tool, x: this.x, sub: this.sub }));
    }
    await checkInvariants(real);
  }
  toString = () => `journey(${this.sub}, ${this.tool}, x=${this.x}, ${this.finish})`;
}

type WebhookKind = 'replay' | 'stale' | 'tampered';
class WebhookCmd implements Cmd {
  constructor(
    readonly kind: WebhookKind,
    readonly pick: number,
  ) {}
  check = () => true;
  async run(_m: object, real: Real) {
    const events: readonly CheckoutSessionEvent[] = sandbox.stripe.webhookEvents;
    if (events.length === 0) return;
    const event = events[this.pick % events.length]!;
    const payload = JSON.stringify(event);
    const now = Math.floor(Date.now() / 1000);
    const timestamp = this.kind === 'stale' ? now - 3600 : now;
    const header = stripeSigner.webhooks.generateTestHeaderString({
      payload,
      secret: sandbox.stripe.webhookSecret,
      timestamp,
    });
    // A tampered body: the signature covers the original bytes.
    const body = this.kind === 'tampered' ? payload.replace('"livemode":false', '"livemode":true ') : payload;
    const before = (await intents(real)).map((i) => `${i.id}@${i.version}`).sort();
    const response = await fetch(`${real.publicUrl}/webhooks/stripe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'stripe-signature': header },
      body,
    });
    await response.text();
    if (this.kind === 'replay') {
      // A replayed (or out-of-order) event is acknowledged and can only move a status forward.
      expect(response.status).toBe(200);
    } else {
      expect(response.status).toBe(400);
      const after = (await intents(real)).map((i) => `${i.id}@${i.version}`).sort();
      expect(after).toEqual(before);
    }
    await checkInvariants(real);
  }
  toString = () => `webhook(${this.kind}#${this.pick})`;
}

class FaultCmd implements Cmd {
  constructor(
    readonly provider: 'walleot' | 'stripe',
    readonly kind: '500' | '429' | 'malformed' | 'hang' | 'slow',
  ) {}
  check = () => true;
  async run(_m: object, _real: Real) {
    const fault =
      this.kind === '500'
        ? { status: 500 }
        : this.kind === '429'
          ? { status: 429, headers: { 'retry-after': '0' } }
          : this.kind === 'slow'
            ? { delayMs: 100 }
            : { kind: this.kind };
    sandbox[this.provider].fail(fault);
  }
  toString = () => `fault(${this.provider}, ${this.kind})`;
}

const journeyArb = fc
  .tuple(subArb, toolArb, xArb, fc.constantFrom<JourneyCmd['finish']>('confirm', 'recall', 'stampede'))
  .map(([s, t, x, f]) => new JourneyCmd(s, t, x, f));
const callArb = fc
  .tuple(subArb, toolArb, xArb, fc.constantFrom(1, 1, 1, 2, 3))
  .map(([s, t, x, n]) => new CallCmd(s, t, x, n));
const confirmOwnArb = fc
  .tuple(subArb, fc.nat(9), fc.constantFrom(undefined, undefined, undefined, 'walleot', 'stripe'))
  .map(([s, p, m]) => new ConfirmCmd(s, 'own', p, m as 'walleot' | 'stripe' | undefined));
const confirmHostileArb = fc
  .tuple(subArb, fc.constantFrom<ConfirmTarget>('other', 'forged', 'junk'), fc.nat(9))
  .map(([s, t, p]) => new ConfirmCmd(s, t, p, undefined));
const payArb = fc.tuple(subArb, fc.nat(9)).map(([s, p]) => new ProviderCmd(s, p, 'pay'));
const endArb = fc
  .tuple(subArb, fc.nat(9), fc.constantFrom<'fail' | 'expire'>('fail', 'expire'))
  .map(([s, p, o]) => new ProviderCmd(s, p, o));
const payPageArb = fc
  .tuple(subArb, fc.nat(9), fc.constantFrom<'walleot' | 'stripe'>('walleot', 'stripe'))
  .map(([s, p, m]) => new PayPageCmd(s, p, m));
const webhookArb = fc
  .tuple(fc.constantFrom<WebhookKind>('replay', 'replay', 'stale', 'tampered'), fc.nat(20))
  .map(([k, p]) => new WebhookCmd(k, p));
const faultArb = fc
  .tuple(
    fc.constantFrom<'walleot' | 'stripe'>('walleot', 'stripe'),
    fc.constantFrom<FaultCmd['kind']>('500', '429', 'malformed', 'hang', 'slow'),
  )
  .map(([p, k]) => new FaultCmd(p, k));

// fc.commands picks among these uniformly: the repeats weight the ones that move money.
const commands = fc.commands(
  [
    journeyArb,
    journeyArb,
    callArb,
    callArb,
    callArb,
    confirmOwnArb,
    confirmOwnArb,
    confirmOwnArb,
    payArb,
    payArb,
    payArb,
    endArb,
    confirmHostileArb,
    payPageArb,
    webhookArb,
    faultArb,
  ],
  { maxCommands: MAX_COMMANDS, size: 'max' },
);

describe.each(['memory', 'redis'] as const)('command sequences over %sStore', (storeKind) => {
  it('keep every §5 invariant after every step', async () => {
    await fc.assert(
      fc.asyncProperty(commands, fc.boolean(), fc.boolean(), async (cmds, duplicate, reorder) => {
        const real = await setup(storeKind, { duplicate, reorder });
        try {
          await fc.asyncModelRun(() => ({ model: {}, real }), cmds);
        } finally {
          if (process.env['FC_STATS']) {
            const all = await intents(real);
            const statuses = all
              .map((i) => `${i.status}/${i.run}`)
              .sort()
              .join(' ');
            process.stderr.write(`${cmds}\n  runs=${real.runs.length} intents=${all.length} ${statuses}\n`);
          }
          await teardown(real);
        }
      }),
      { seed: SEED, numRuns: NUM_RUNS },
    );
  }, 120_000);
});
