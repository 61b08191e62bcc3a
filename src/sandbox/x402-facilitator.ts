import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
// Type-only here: viem (an optional peer) is loaded when the facilitator starts.
import type { Hex } from 'viem';
import { z } from 'zod';
import {
  type Fault,
  FaultInjector,
  faultControlSchema,
  listen,
  RequestLog,
  readBody,
  readControlJson,
  SandboxClock,
  sendJson,
  sleep,
} from './harness.js';

/**
 * A local x402 facilitator (the x402 v2 facilitator API): `POST /verify`, `POST /settle`,
 * `GET /supported`, checking exact EIP-3009 payloads as `@x402/evm`'s facilitator does (EIP-712
 * signature recovery, recipient, exact amount, network, validity window, balance) and settling
 * against an in-memory ledger with an atomic consumed-nonce set. Test wallets are funded at start;
 * faults (`fail-next`), settlement failures and a clock are controllable. No chain, no network.
 * Imports nothing of the product.
 */

/** A test network: chain id 84532 (Base Sepolia) unless told otherwise. */
export const SANDBOX_X402_NETWORK = 'eip155:84532';
/** Base Sepolia USDC's address; the stand-in's ledger counts it in 6-decimal atomic units. */
export const SANDBOX_X402_ASSET = '0x036CbD53842c5426634e7929541eC2318f3dCF7e';

export interface X402FacilitatorOptions {
  port?: number;
  clock?: SandboxClock;
  network?: string;
  asset?: string;
  /** Test wallets to fund at start (default 2), each with `fundAtomic` (default 100 USDC). */
  wallets?: number;
  fundAtomic?: bigint;
}

/** What signs for a wallet: a viem local account (it fits `ExactEvmScheme` from `@x402/evm/exact/client`). */
export interface SandboxSigner {
  readonly address: `0x${string}`;
  signTypedData(parameters: never): Promise<`0x${string}`>;
}

/** A funded test wallet. Its private key stays inside the stand-in: only the signing account is handed out. */
export interface SandboxWallet {
  address: `0x${string}`;
  /** A viem account that signs with the wallet's key. */
  account: SandboxSigner;
}

export interface X402FacilitatorSandbox {
  /** The facilitator URL to configure: `X402Provider({ facilitatorUrl })`. */
  url: string;
  origin: string;
  network: string;
  asset: string;
  /** The address the sandbox's X402Provider is paid to. */
  payTo: `0x${string}`;
  wallets: SandboxWallet[];
  /** A new funded test wallet. */
  newWallet(fundAtomic?: bigint): SandboxWallet;
  /** Atomic balance of an address in the ledger. */
  balanceOf(address: string): bigint;
  /** Completed settlements, oldest first. */
  settlements: Array<{ from: string; to: string; value: string; nonce: string; transaction: string }>;
  /** Verify requests answered, for tests. */
  verifications: number;
  /** The next `count` settlements answer 200 `success:false` with this reason (default `unexpected_settle_error`). */
  failNextSettle(reason?: string, count?: number): void;
  /** Serve a fault (500, malformed, hang, delay) for the next requests, optionally only on one path. */
  failNext(fault: Fault): void;
  log: RequestLog;
  reset(): void;
  close(): Promise<void>;
}

const authorizationSchema = z.object({
  from: z.string().regex(/^0x[0-9a-fA-F]{40}$/),
  to: z.string().regex(/^0x[0-9a-fA-F]{40}$/),
  value: z.string().regex(/^\d{1,78}$/),
  validAfter: z.string().regex(/^\d{1,20}$/),
  validBefore: z.string().regex(/^\d{1,20}$/),
  nonce: z.string().regex(/^0x[0-9a-fA-F]{64}$/),
});

const requirementsSchema = z.looseObject({
  scheme: z.string(),
  network: z.string(),
  asset: z.string(),
  amount: z.string(),
  payTo: z.string(),
  maxTimeoutSeconds: z.number(),
  extra: z.looseObject({ name: z.string(), version: z.string() }),
});

const requestSchema = z.object({
  x402Version: z.literal(2),
  paymentPayload: z.looseObject({
    x402Version: z.literal(2),
    accepted: requirementsSchema,
    payload: z.looseObject({
      signature: z.string().regex(/^0x[0-9a-fA-F]+$/),
      authorization: authorizationSchema,
    }),
  }),
  paymentRequirements: requirementsSchema,
});

type FacilitatorRequest = z.infer<typeof requestSchema>;

const TRANSFER_TYPES = {
  TransferWithAuthorization: [
    { name: 'from', type: 'address' },
    { name: 'to', type: 'address' },
    { name: 'value', type: 'uint256' },
    { name: 'validAfter', type: 'uint256' },
    { name: 'validBefore', type: 'uint256' },
    { name: 'nonce', type: 'bytes32' },
  ],
} as const;

export async function startX402Facilitator(
  options: X402FacilitatorOptions = {},
): Promise<X402FacilitatorSandbox> {
  let viem: typeof import('viem');
  let accounts: typeof import('viem/accounts');
  try {
    [viem, accounts] = await Promise.all([import('viem'), import('viem/accounts')]);
  } catch (error) {
    throw new Error('the x402 facilitator stand-in needs the package viem: npm install viem', {
      cause: error,
    });
  }
  const { getAddress, verifyTypedData } = viem;
  const { generatePrivateKey, privateKeyToAccount } = accounts;
  const clock = options.clock ?? new SandboxClock();
  const network = options.network ?? SANDBOX_X402_NETWORK;
  const asset = getAddress(options.asset ?? SANDBOX_X402_ASSET);
  const chainId = Number(network.split(':')[1]);
  const fundDefault = options.fundAtomic ?? 100_000_000n;
  const faults = new FaultInjector();
  const log = new RequestLog();
  const balances = new Map<string, bigint>();
  const consumed = new Set<string>();
  const settleFailures: string[] = [];
  const payTo = privateKeyToAccount(generatePrivateKey()).address;

  const newWallet = (fundAtomic = fundDefault): SandboxWallet => {
    const account = privateKeyToAccount(generatePrivateKey());
    balances.set(account.address.toLowerCase(), fundAtomic);
    return { address: account.address, account };
  };
  const initial = Array.from({ length: options.wallets ?? 2 }, () => newWallet());
  const wallets = [...initial];

  /** The checks of `@x402/evm`'s verifyEIP3009, in its order; undefined when valid. */
  async function check(body: FacilitatorRequest): Promise<string | undefined> {
    const { paymentPayload: p, paymentRequirements: r } = body;
    const auth = p.payload.authorization;
    if (p.accepted.scheme !== 'exact' || r.scheme !== 'exact') return 'invalid_scheme';
    if (p.accepted.network !== r.network || r.network !== network)
      return 'invalid_exact_evm_network_mismatch';
    if (getAddress(r.asset) !== asset) return 'invalid_exact_evm_asset_mismatch';
    let signed = false;
    try {
      signed = await verifyTypedData({
        address: getAddress(auth.from),
        domain: { name: r.extra.name, version: r.extra.version, chainId, verifyingContract: asset },
        types: TRANSFER_TYPES,
        primaryType: 'TransferWithAuthorization',
        message: {
          from: getAddress(auth.from),
          to: getAddress(auth.to),
          value: BigInt(auth.value),
          validAfter: BigInt(auth.validAfter),
          validBefore: BigInt(auth.validBefore),
          nonce: auth.nonce as Hex,
        },
        signature: p.payload.signature as Hex,
      });
    } catch {
      signed = false;
    }
    if (!signed) return 'invalid_exact_evm_signature';
    if (getAddress(auth.to) !== getAddress(r.payTo)) return 'invalid_exact_evm_recipient_mismatch';
    const now = BigInt(clock.nowSeconds());
    if (BigInt(auth.validBefore) < now + 6n) return 'invalid_exact_evm_payload_authorization_valid_before';
    if (BigInt(auth.validAfter) > now) return 'invalid_exact_evm_payload_authorization_valid_after';
    if (auth.value !== r.amount) return 'invalid_exact_evm_payload_authorization_value_mismatch';
    if (consumed.has(nonceKey(auth.from, auth.nonce))) return 'invalid_exact_evm_nonce_already_used';
    if ((balances.get(auth.from.toLowerCase()) ?? 0n) < BigInt(auth.value)) return 'insufficient_funds';
    return undefined;
  }

  const nonceKey = (from: string, nonce: string) => `${asset}|${from.toLowerCase()}|${nonce.toLowerCase()}`;

  const state = { verifications: 0 };
  const settlements: X402FacilitatorSandbox['settlements'] = [];

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sandbox');
    const body = await readBody(req).catch(() => '');
    if (url.pathname.startsWith('/__test/')) return control(url.pathname, req, res);
    log.record(req, body);
    const fault = faults.take(url.pathname);
    if (fault) {
      if (fault.delayMs) await sleep(fault.delayMs);
      if (fault.kind === 'hang') return;
      if (fault.kind === 'malformed') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"isValid":');
        return;
      }
      if (fault.status !== undefined)
        return sendJson(res, fault.status, fault.body ?? { error: 'sandbox fault' }, fault.headers);
    }
    if (req.method === 'GET' && url.pathname === '/supported') {
      return sendJson(res, 200, {
        kinds: [{ x402Version: 2, scheme: 'exact', network }],
        extensions: [],
        signers: { 'eip155:*': [payTo] },
      });
    }
    if (req.method !== 'POST' || (url.pathname !== '/verify' && url.pathname !== '/settle'))
      return sendJson(res, 404, { error: 'not found' });
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      return sendJson(res, 400, { error: 'body is not JSON' });
    }
    const parsed = requestSchema.safeParse(json);
    if (!parsed.success) return sendJson(res, 400, { error: 'invalid_payload' });
    const auth = parsed.data.paymentPayload.payload.authorization;
    const reason = await check(parsed.data);
    if (url.pathname === '/verify') {
      state.verifications += 1;
      return sendJson(
        res,
        200,
        reason === undefined
          ? { isValid: true, payer: auth.from }
          : { isValid: false, invalidReason: reason, payer: auth.from },
      );
    }
    const failed = (errorReason: string) =>
      sendJson(res, 200, { success: false, errorReason, payer: auth.from, transaction: '', network });
    if (reason !== undefined) return failed(reason);
    const injected = settleFailures.shift();
    if (injected !== undefined) return failed(injected);
    // Atomic: the nonce is consumed and the balance moved in one synchronous step.
    const key = nonceKey(auth.from, auth.nonce);
    if (consumed.has(key)) return failed('invalid_exact_evm_nonce_already_used');
    consumed.add(key);
    const from = auth.from.toLowerCase();
    const value = BigInt(auth.value);
    balances.set(from, (balances.get(from) ?? 0n) - value);
    const to = auth.to.toLowerCase();
    balances.set(to, (balances.get(to) ?? 0n) + value);
    const transaction = `0x${randomBytes(32).toString('hex')}`;
    settlements.push({ from: auth.from, to: auth.to, value: auth.value, nonce: auth.nonce, transaction });
    return sendJson(res, 200, { success: true, payer: auth.from, transaction, network, amount: auth.value });
  }

  async function control(path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readControlJson(req);
    if (path === '/__test/fail-next') {
      const fault = faultControlSchema.safeParse(body?.json);
      if (!fault.success) return sendJson(res, 400, { error: 'invalid fault' });
      faults.add(fault.data as Fault);
      return sendJson(res, 200, { ok: true });
    }
    return sendJson(res, 404, { error: 'not found' });
  }

  const running = await listen((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendJson(res, 500, { error: 'sandbox facilitator error' });
    });
  }, options.port ?? 0);

  const sandbox: X402FacilitatorSandbox = {
    url: running.origin,
    origin: running.origin,
    network,
    asset,
    payTo,
    wallets,
    newWallet: (fund) => {
      const wallet = newWallet(fund);
      wallets.push(wallet);
      return wallet;
    },
    balanceOf: (address) => balances.get(address.toLowerCase()) ?? 0n,
    settlements,
    get verifications() {
      return state.verifications;
    },
    failNextSettle: (reason = 'unexpected_settle_error', count = 1) => {
      for (let i = 0; i < count; i++) settleFailures.push(reason);
    },
    failNext: (fault) => faults.add(fault),
    log,
    reset: () => {
      faults.clear();
      settleFailures.length = 0;
    },
    close: () => running.close(),
  };
  return sandbox;
}
