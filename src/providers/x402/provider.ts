import { createHash } from 'node:crypto';
// Type-only: @x402/core is an optional peer, loaded on the first verification (nothing of it in the .d.ts).
import type { FacilitatorClient } from '@x402/core/server';
import type { PaymentPayload, SettleResponse } from '@x402/core/types';
import { ConfigError, ProviderError } from '../../core/errors.js';
import { consoleLogger, type Logger, redactingLogger } from '../../core/logger.js';
import { currencyExponent, normalizeCurrency } from '../../core/money/currencies.js';
import type { Money } from '../../core/money/money.js';
import type {
  Charge,
  ChargeRefusal,
  CreatedPayment,
  CredentialSettlement,
  PaymentProvider,
  ProviderCapabilities,
  ProviderPaymentState,
} from '../../core/provider.js';

/**
 * x402 (protocol v2, exact scheme on EVM): the agent pays by itself. The charge becomes one `exact` payment
 * requirement (network, asset, pay-to address, amount in the asset's atomic units); the client
 * signs a transfer authorization and sends it with its retried call; the facilitator verifies it
 * before the run and settles it after a successful run only. Nothing is created at the provider
 * until then, so `createPayment` is local.
 */

/** Base Sepolia USDC, the x402 test asset. */
export const X402_BASE_SEPOLIA_USDC = {
  address: '0x036CbD53842c5426634e7929541eC2318f3dCF7e',
  decimals: 6,
  name: 'USDC',
  version: '2',
} as const;

export interface X402Asset {
  /** The token contract. */
  address: string;
  /** Decimals of the token: 6 for USDC. */
  decimals: number;
  /** EIP-712 domain name and version of the token (USDC: "USDC", "2"). */
  name: string;
  version: string;
}

/** Per-path headers for the facilitator (e.g. an API key), as `@x402/core`'s HTTPFacilitatorClient takes them. */
export type FacilitatorAuthHeaders = () => Promise<{
  verify?: Record<string, string>;
  settle?: Record<string, string>;
  supported?: Record<string, string>;
}>;

/** `Id`: the `id` option's type, so a literal id types the routers built with this provider. */
export interface X402ProviderOptions<Id extends string = string> {
  /** Where the money goes: the server's address on `network`. */
  payTo: string;
  /** CAIP-2 network id. Default `eip155:84532` (Base Sepolia). */
  network?: string;
  /** The token paid in. Default Base Sepolia USDC. */
  asset?: X402Asset;
  /** The currency the asset counts in (a USD stablecoin: `USD`). Default `USD`. */
  currency?: string;
  /** The facilitator that verifies and settles. Default `https://x402.org/facilitator`. */
  facilitatorUrl?: string;
  /** Headers the facilitator needs (its key); never logged. */
  facilitatorHeaders?: FacilitatorAuthHeaders;
  /** Deadline of each facilitator request. Default 30000. */
  timeoutMs?: number;
  /** How long a signed payment stays valid. Default 300. */
  maxTimeoutSeconds?: number;
  /** Largest charge in minor units of `currency`. Default 100000 ($1,000). */
  maxMinor?: number;
  /** Whether this is a test network (default true for the default network). */
  testMode?: boolean;
  /** Provider id used in routing and tool overrides. Default `x402`. */
  id?: Id;
  logger?: Logger;
}

const DEFAULT_NETWORK = 'eip155:84532';
const DEFAULT_FACILITATOR = 'https://x402.org/facilitator';

/** One x402 v2 `exact` payment requirement (an `accepts[]` entry), as `@x402/core` types it. */
export interface X402PaymentRequirements {
  scheme: 'exact';
  /** CAIP-2, e.g. `eip155:84532`. */
  network: `${string}:${string}`;
  asset: string;
  /** In the asset's atomic units, as an exact integer string. */
  amount: string;
  payTo: string;
  maxTimeoutSeconds: number;
  extra: Record<string, unknown>;
}

type PaymentRequirements = X402PaymentRequirements;

/** What a credential must carry, checked before the facilitator is asked (altered credentials stop here). */
interface ExactAuthorization {
  from: string;
  to: string;
  value: string;
  nonce: string;
}

export class X402Provider<Id extends string = 'x402'> implements PaymentProvider<Id> {
  readonly id: Id;
  readonly capabilities: ProviderCapabilities;
  readonly #network: string;
  readonly #asset: X402Asset;
  readonly #currency: string;
  readonly #payTo: string;
  readonly #maxMinor: number;
  readonly #maxTimeoutSeconds: number;
  readonly #facilitatorUrl: string;
  readonly #facilitatorHeaders: FacilitatorAuthHeaders | undefined;
  readonly #timeoutMs: number;
  readonly #logger: Logger;
  #facilitator: Promise<FacilitatorClient> | undefined;

  constructor(options: X402ProviderOptions<Id>) {
    if (typeof options?.payTo !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(options.payTo))
      throw new ConfigError('X402Provider: payTo must be an 0x address (40 hex digits) on the network');
    // Without an `id` option `Id` is its default, 'x402'.
    this.id = (options.id ?? 'x402') as Id;
    this.#network = options.network ?? DEFAULT_NETWORK;
    if (!/^[-a-z0-9]{3,8}:[-_a-zA-Z0-9]{1,32}$/.test(this.#network))
      throw new ConfigError(
        `X402Provider: network must be a CAIP-2 id such as eip155:84532, not "${this.#network}"`,
      );
    this.#asset = options.asset ?? X402_BASE_SEPOLIA_USDC;
    if (!Number.isInteger(this.#asset.decimals) || this.#asset.decimals < 0 || this.#asset.decimals > 36)
      throw new ConfigError('X402Provider: asset.decimals must be an integer from 0 to 36');
    const currency = normalizeCurrency(options.currency ?? 'USD');
    if (currency === undefined) throw new ConfigError(`X402Provider: unknown currency "${options.currency}"`);
    this.#currency = currency;
    this.#payTo = options.payTo;
    this.#maxMinor = options.maxMinor ?? 100_000;
    this.#maxTimeoutSeconds = options.maxTimeoutSeconds ?? 300;
    this.#facilitatorUrl = (options.facilitatorUrl ?? DEFAULT_FACILITATOR).replace(/\/+$/, '');
    this.#facilitatorHeaders = options.facilitatorHeaders;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#logger = options.logger ? redactingLogger(options.logger) : consoleLogger();
    const testMode = options.testMode ?? this.#network === DEFAULT_NETWORK;
    this.capabilities = {
      label: `${this.#asset.name} on ${this.#network} (x402, paid by your agent)`,
      currencies: [currency],
      limits: { [currency]: { min: 1, max: this.#maxMinor } },
      fee: { percentBps: 0, fixedMinor: 0, label: 'no fee' },
      instant: true,
      webhooks: false,
      returnRedirect: false,
      refunds: false,
      cancel: false,
      // Nothing to poll: the state of an x402 payment is what its verification and settlement said.
      statusReadsPerMinute: 600,
      testMode,
      credential: 'x402',
    };
  }

  /** The facilitator URL this provider verifies and settles with. */
  get facilitatorUrl(): string {
    return this.#facilitatorUrl;
  }

  refuseCharge(money: Money): ChargeRefusal {
    if (money.currency !== this.#currency) return `x402 takes ${this.#currency} only`;
    if (money.minor < 1) return 'the amount must be positive';
    if (money.minor > this.#maxMinor) return `above this x402 offer's maximum`;
    if (this.#atomic(money) === undefined)
      return `${this.#asset.name} has ${this.#asset.decimals} decimals: the amount is not exactly representable`;
    return undefined;
  }

  /** The requirement a credential for this charge must meet: local, deterministic, no request. */
  offerCredential(charge: Charge): PaymentRequirements {
    const amount = this.#atomic(charge.money);
    if (amount === undefined)
      throw new ProviderError(this.id, 'invalid_request', 'the amount is not exactly representable');
    return {
      scheme: 'exact',
      network: this.#network as `${string}:${string}`,
      asset: this.#asset.address,
      amount,
      payTo: this.#payTo,
      maxTimeoutSeconds: this.#maxTimeoutSeconds,
      extra: { name: this.#asset.name, version: this.#asset.version, payment_id: charge.intentId },
    };
  }

  async createPayment(charge: Charge): Promise<CreatedPayment> {
    return {
      paymentId: `x402_${charge.intentId}`,
      status: 'pending',
      rawStatus: 'payment_required',
      action: { kind: 'credential_required', requirements: this.offerCredential(charge) },
    };
  }

  /** x402 has no payment to look up: an offer waits for its credential. */
  async getPayment(paymentId: string): Promise<ProviderPaymentState> {
    return { paymentId, status: 'pending', rawStatus: 'payment_required' };
  }

  /**
   * Check a credential (`_meta["x402/payment"]`, a v2 PaymentPayload) against the charge: the
   * requirement it accepted must be this charge's own (amount, asset, network, pay-to, payment id),
   * its authorization must pay exactly that, and the facilitator must find it valid. The payment id
   * of the state is the credential's single-use id (network, asset, payer, nonce).
   */
  async verifyCredential(credential: unknown, charge: Charge): Promise<ProviderPaymentState> {
    const { payload, requirements, authorization } = this.#match(credential, charge);
    const facilitator = await this.#client();
    let verdict: Awaited<ReturnType<FacilitatorClient['verify']>>;
    try {
      verdict = await facilitator.verify(payload, requirements);
    } catch (error) {
      throw this.#facilitatorError('verify', error);
    }
    if (!verdict.isValid) {
      throw new ProviderError(
        this.id,
        'invalid_request',
        `the payment was not accepted: ${verdict.invalidReason ?? 'invalid'}`,
      );
    }
    return {
      paymentId: credentialId(this.#network, this.#asset.address, authorization),
      status: 'authorized',
      rawStatus: 'verified',
      paid: charge.money,
    };
  }

  /** Settle a verified credential. A failed settlement resolves `ok: false` with the reason; it never throws. */
  async settleCredential(credential: unknown, charge: Charge): Promise<CredentialSettlement> {
    let payload: PaymentPayload;
    let requirements: PaymentRequirements;
    try {
      ({ payload, requirements } = this.#match(credential, charge));
    } catch (error) {
      return { ok: false, receipt: this.#failed('invalid_payload'), reason: messageOf(error) };
    }
    let settled: SettleResponse;
    try {
      settled = await (await this.#client()).settle(payload, requirements);
    } catch (error) {
      const reason = reasonOf(error) ?? 'unexpected_settle_error';
      this.#logger.warn('x402 settlement failed', { providerId: this.id, reason });
      return { ok: false, receipt: this.#failed(reason), reason };
    }
    if (settled.success !== true) {
      const reason = settled.errorReason ?? 'settlement_failed';
      return { ok: false, receipt: { ...settled }, reason };
    }
    return { ok: true, receipt: { ...settled } };
  }

  #failed(reason: string): Record<string, unknown> {
    return { success: false, errorReason: reason, transaction: '', network: this.#network };
  }

  /** The credential as a v2 payload for exactly this charge's requirement, or a ProviderError saying what differs. */
  #match(
    credential: unknown,
    charge: Charge,
  ): { payload: PaymentPayload; requirements: PaymentRequirements; authorization: ExactAuthorization } {
    const requirements = this.offerCredential(charge);
    const refuse = (why: string) =>
      new ProviderError(this.id, 'invalid_request', `the payment credential ${why}`);
    if (typeof credential !== 'object' || credential === null) throw refuse('is not an x402 payment payload');
    const payload = credential as Partial<PaymentPayload> & { accepted?: Partial<PaymentRequirements> };
    if (payload.x402Version !== 2) throw refuse('is not x402 version 2');
    const accepted = payload.accepted;
    if (typeof accepted !== 'object' || accepted === null) throw refuse('names no accepted requirement');
    for (const field of ['scheme', 'network', 'amount', 'maxTimeoutSeconds'] as const) {
      if (accepted[field] !== requirements[field]) throw refuse(`is for another ${field}`);
    }
    for (const field of ['asset', 'payTo'] as const) {
      if (String(accepted[field]).toLowerCase() !== requirements[field].toLowerCase())
        throw refuse(`is for another ${field}`);
    }
    const extra = (accepted.extra ?? {}) as Record<string, unknown>;
    if (extra['payment_id'] !== charge.intentId)
      throw refuse('is for another payment (tool, arguments or payer)');
    const inner = payload.payload as { authorization?: Partial<ExactAuthorization> } | undefined;
    const auth = inner?.authorization;
    if (
      typeof auth?.from !== 'string' ||
      typeof auth.to !== 'string' ||
      typeof auth.value !== 'string' ||
      typeof auth.nonce !== 'string'
    )
      throw refuse('carries no exact transfer authorization');
    if (auth.to.toLowerCase() !== requirements.payTo.toLowerCase()) throw refuse('pays another address');
    if (auth.value !== requirements.amount) throw refuse('pays another amount');
    return {
      payload: payload as PaymentPayload,
      requirements,
      authorization: auth as ExactAuthorization,
    };
  }

  #client(): Promise<FacilitatorClient> {
    this.#facilitator ??= import('@x402/core/server')
      .catch((error: unknown) => {
        this.#facilitator = undefined;
        throw new ProviderError(
          this.id,
          'not_supported',
          'X402Provider needs the package @x402/core: npm install @x402/core',
          { cause: error },
        );
      })
      .then(
        ({ HTTPFacilitatorClient }) =>
          new HTTPFacilitatorClient({
            url: this.#facilitatorUrl,
            timeoutMs: this.#timeoutMs,
            ...(this.#facilitatorHeaders ? { createAuthHeaders: this.#facilitatorHeaders } : {}),
          }),
      );
    return this.#facilitator;
  }

  #facilitatorError(what: string, error: unknown): ProviderError {
    const reason = reasonOf(error);
    if (reason !== undefined)
      return new ProviderError(this.id, 'invalid_request', `the payment was not accepted: ${reason}`);
    this.#logger.warn(`x402 facilitator ${what} failed`, { providerId: this.id, error: messageOf(error) });
    return new ProviderError(
      this.id,
      'provider_unavailable',
      `the facilitator could not ${what} the payment`,
      {
        cause: error,
      },
    );
  }

  #atomic(money: Money): string | undefined {
    const exponent = currencyExponent(money.currency);
    const shift = this.#asset.decimals - exponent;
    const minor = BigInt(money.minor);
    if (shift >= 0) return (minor * 10n ** BigInt(shift)).toString();
    const unit = 10n ** BigInt(-shift);
    return minor % unit === 0n ? (minor / unit).toString() : undefined;
  }

  toJSON(): Record<string, unknown> {
    return { id: this.id, network: this.#network, asset: this.#asset.address, payTo: this.#payTo };
  }
}

/** The single-use id of an exact authorization: one per (network, asset, payer, nonce), as on chain. */
function credentialId(network: string, asset: string, auth: ExactAuthorization): string {
  const key = [network, asset.toLowerCase(), auth.from.toLowerCase(), auth.nonce.toLowerCase()].join('|');
  return `x402_${createHash('sha256').update(key).digest('hex').slice(0, 40)}`;
}

function reasonOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as { invalidReason?: unknown; errorReason?: unknown };
  if (typeof e.invalidReason === 'string') return e.invalidReason;
  if (typeof e.errorReason === 'string') return e.errorReason;
  return undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
