import { z } from 'zod';
import type { FormParams } from './stripe-form.js';
import { paramName } from './stripe-form.js';
import { type ApiResponse, invalidParams, resourceMissing } from './stripe-responses.js';
import {
  formatAmount,
  STRIPE_CURRENCIES,
  STRIPE_MAX_AMOUNT,
  STRIPE_THREE_DECIMAL,
  stripeExponent,
  stripeMinimum,
} from './tables.js';

/**
 * Parameter validation of the Stripe stand-in, answering as Stripe does: one error, with the
 * parameter's wire name in `param` and Stripe's code where one is documented. Structure is
 * checked with zod (every value arrives as a string); the money and time rules follow in code.
 */

export interface LineItemInput {
  name: string;
  unitAmount: number;
  quantity: number;
}

export interface CreateSessionInput {
  currency: string;
  amountTotal: number;
  lineItems: LineItemInput[];
  successUrl?: string;
  cancelUrl?: string;
  clientReferenceId?: string;
  customerEmail?: string;
  metadata: Record<string, string>;
  expiresAt: number;
  expandPaymentIntent: boolean;
  allowedPaymentMethodTypes?: string[];
}

export type Validated<T> = { ok: true; value: T } | { ok: false; response: ApiResponse };

const MIN_LIFETIME_S = 30 * 60;
const MAX_LIFETIME_S = 24 * 60 * 60;

const integerText = z
  .string()
  .refine((s) => /^-?\d+$/.test(s), { params: { stripeCode: 'parameter_invalid_integer', kind: 'integer' } });
const decimalText = z.string().refine((s) => /^\d+(\.\d{1,12})?$/.test(s), {
  params: { stripeCode: 'parameter_invalid', kind: 'decimal' },
});
const nonEmpty = z.string().min(1);
const urlText = z
  .string()
  .min(1)
  .max(5000)
  .refine(isHttpUrl, { params: { stripeCode: 'url_invalid', kind: 'url' } });
const metadataParam = z.union([z.literal(''), z.record(z.string(), z.string())]);
const expandParam = z.array(z.string());

const LineItemSchema = z.strictObject({
  price: z.string().optional(),
  price_data: z
    .strictObject({
      currency: nonEmpty,
      unit_amount: integerText.optional(),
      unit_amount_decimal: decimalText.optional(),
      product: z.string().optional(),
      product_data: z
        .strictObject({
          name: nonEmpty,
          description: z.string().optional(),
          images: z.array(z.string()).optional(),
          metadata: metadataParam.optional(),
          tax_code: z.string().optional(),
        })
        .optional(),
      tax_behavior: z.string().optional(),
    })
    .optional(),
  quantity: integerText.optional(),
});

const CreateSessionSchema = z.strictObject({
  mode: nonEmpty,
  line_items: z.array(LineItemSchema).min(1).max(100),
  success_url: urlText.optional(),
  cancel_url: urlText.optional(),
  client_reference_id: z.string().min(1).max(200).optional(),
  customer_email: z.string().optional(),
  metadata: metadataParam.optional(),
  expires_at: integerText.optional(),
  expand: expandParam.optional(),
  locale: z.string().optional(),
  submit_type: z.string().optional(),
  ui_mode: z.literal('hosted_page').optional(),
  allowed_payment_method_types: z.array(z.string()).optional(),
});

const RetrieveSchema = z.strictObject({ expand: expandParam.optional() });
const ExpireSchema = z.strictObject({ expand: expandParam.optional() });

const RefundSchema = z.strictObject({
  payment_intent: nonEmpty,
  amount: integerText.optional(),
  reason: z.enum(['duplicate', 'fraudulent', 'requested_by_customer']).optional(),
  metadata: metadataParam.optional(),
  expand: expandParam.optional(),
});

export function validateCreateSession(params: FormParams, nowSeconds: number): Validated<CreateSessionInput> {
  const parsed = CreateSessionSchema.safeParse(params, { reportInput: true });
  if (!parsed.success) return fail(issueResponse(parsed.error.issues[0]));
  const p = parsed.data;

  if (p.mode !== 'payment') {
    const known = p.mode === 'setup' || p.mode === 'subscription';
    return fail(
      invalidParams(
        known
          ? `The Stripe sandbox supports only mode=payment, not mode=${p.mode}.`
          : `Invalid mode: must be one of payment, setup, or subscription`,
        { param: 'mode' },
      ),
    );
  }

  const expand = checkExpand(p.expand);
  if (!expand.ok) return expand;

  const lineItems: LineItemInput[] = [];
  let currency: string | undefined;
  for (const [i, item] of p.line_items.entries()) {
    const at = (...rest: string[]) => paramName(['line_items', i, ...rest]);
    if (item.price !== undefined) return fail(resourceMissing('price', item.price, at('price')));
    const data = item.price_data;
    if (data === undefined) {
      return fail(missing(at('price_data')));
    }
    if (!STRIPE_CURRENCIES.has(data.currency)) {
      return fail(
        invalidParams(
          `Invalid currency: ${data.currency}. Stripe currently supports these currencies (always lowercase): ${[...STRIPE_CURRENCIES].join(', ')}`,
          { param: at('price_data', 'currency') },
        ),
      );
    }
    if (currency !== undefined && data.currency !== currency) {
      return fail(
        invalidParams('All line items in a Checkout Session must use the same currency.', {
          param: at('price_data', 'currency'),
        }),
      );
    }
    currency = data.currency;

    const unitAmount = readUnitAmount(data.unit_amount, data.unit_amount_decimal, at);
    if (!unitAmount.ok) return unitAmount;

    if (data.product !== undefined) {
      return fail(resourceMissing('product', data.product, at('price_data', 'product')));
    }
    if (data.product_data === undefined) return fail(missing(at('price_data', 'product_data')));

    if (item.quantity === undefined) {
      return fail(
        invalidParams(`Quantity is required. Add \`quantity\` to \`${at()}\``, {
          code: 'parameter_missing',
          param: at('quantity'),
        }),
      );
    }
    const quantity = Number(item.quantity);
    if (!Number.isSafeInteger(quantity) || quantity < 1) {
      return fail(
        invalidParams(`Invalid positive integer: ${item.quantity}`, {
          code: 'parameter_invalid_integer',
          param: at('quantity'),
        }),
      );
    }
    lineItems.push({ name: data.product_data.name, unitAmount: unitAmount.value, quantity });
  }
  if (currency === undefined) return fail(missing('line_items'));

  const metadata = checkMetadata(p.metadata);
  if (!metadata.ok) return metadata;

  const expiresAt = checkExpiresAt(p.expires_at, nowSeconds);
  if (!expiresAt.ok) return expiresAt;

  const total = lineItems.reduce((sum, li) => sum + li.unitAmount * li.quantity, 0);
  const amountError = checkAmount(total, currency);
  if (amountError !== undefined) return fail(amountError);

  return {
    ok: true,
    value: {
      currency,
      amountTotal: total,
      lineItems,
      metadata: metadata.value,
      expiresAt: expiresAt.value,
      expandPaymentIntent: expand.value,
      ...(p.success_url === undefined ? {} : { successUrl: p.success_url }),
      ...(p.cancel_url === undefined ? {} : { cancelUrl: p.cancel_url }),
      ...(p.client_reference_id === undefined ? {} : { clientReferenceId: p.client_reference_id }),
      ...(p.customer_email === undefined ? {} : { customerEmail: p.customer_email }),
      ...(p.allowed_payment_method_types === undefined
        ? {}
        : { allowedPaymentMethodTypes: p.allowed_payment_method_types }),
    },
  };
}

/** Query of `GET /v1/checkout/sessions/:id` and body of `.../expire`: only `expand[]` is accepted. */
export function validateExpandOnly(params: FormParams, forExpire = false): Validated<boolean> {
  const parsed = (forExpire ? ExpireSchema : RetrieveSchema).safeParse(params, { reportInput: true });
  if (!parsed.success) return fail(issueResponse(parsed.error.issues[0]));
  return checkExpand(parsed.data.expand);
}

export interface RefundInput {
  paymentIntent: string;
  amount?: number;
}

export function validateRefund(params: FormParams): Validated<RefundInput> {
  if (params['payment_intent'] === undefined && params['charge'] !== undefined) {
    return fail(invalidParams('The Stripe sandbox refunds by payment_intent only.', { param: 'charge' }));
  }
  const parsed = RefundSchema.safeParse(params, { reportInput: true });
  if (!parsed.success) return fail(issueResponse(parsed.error.issues[0]));
  const amount = parsed.data.amount === undefined ? undefined : Number(parsed.data.amount);
  if (amount !== undefined && (!Number.isSafeInteger(amount) || amount < 1)) {
    return fail(
      invalidParams(`Invalid positive integer: ${parsed.data.amount}`, {
        code: 'parameter_invalid_integer',
        param: 'amount',
      }),
    );
  }
  return {
    ok: true,
    value: { paymentIntent: parsed.data.payment_intent, ...(amount === undefined ? {} : { amount }) },
  };
}

/** The "amount" rules for a total in Stripe units: unit rules, currency minimum, 8 digits. */
function checkAmount(total: number, currency: string): ApiResponse | undefined {
  const param = 'line_items[0][price_data][unit_amount]';
  if (!Number.isSafeInteger(total) || total > STRIPE_MAX_AMOUNT) {
    return invalidParams(
      `Amount must be no more than ${describeAmount(STRIPE_MAX_AMOUNT, currency)} ${currency}`,
      { code: 'amount_too_large', param },
    );
  }
  if (STRIPE_THREE_DECIMAL.has(currency) && total % 10 !== 0) {
    return invalidParams(
      `Amounts in ${currency} must be divisible by 10 (the last of its three decimals must be 0); got ${total}.`,
      { code: 'invalid_charge_amount', param },
    );
  }
  if (currency === 'isk' && total % 100 !== 0) {
    return invalidParams(
      `Amounts in isk must be divisible by 100 (whole krónur are the smallest unit cards support); got ${total}.`,
      { code: 'invalid_charge_amount_no_decimal_compatible', param },
    );
  }
  const minimum = stripeMinimum(currency);
  if (total < minimum) {
    return invalidParams(`Amount must be at least ${describeAmount(minimum, currency)} ${currency}`, {
      code: 'amount_too_small',
      param,
    });
  }
  return undefined;
}

function describeAmount(amount: number, currency: string): string {
  return formatAmount(amount, stripeExponent(currency), currency);
}

function readUnitAmount(
  unitAmount: string | undefined,
  unitAmountDecimal: string | undefined,
  at: (...rest: string[]) => string,
): Validated<number> {
  if (unitAmount !== undefined && unitAmountDecimal !== undefined) {
    return fail(
      invalidParams('You may only specify one of these parameters: unit_amount, unit_amount_decimal.', {
        code: 'parameters_exclusive',
        param: at('price_data', 'unit_amount'),
      }),
    );
  }
  if (unitAmount === undefined && unitAmountDecimal === undefined) {
    return fail(missing(at('price_data', 'unit_amount')));
  }
  const text = (unitAmount ?? unitAmountDecimal) as string;
  const param = at('price_data', unitAmount === undefined ? 'unit_amount_decimal' : 'unit_amount');
  const [whole, fraction = ''] = text.split('.');
  if (/[1-9]/.test(fraction)) {
    return fail(
      invalidParams('The Stripe sandbox accepts only whole unit_amount_decimal values.', { param }),
    );
  }
  const value = Number(whole);
  if (!Number.isSafeInteger(value)) {
    return fail(invalidParams(`Invalid integer: ${text}`, { code: 'amount_too_large', param }));
  }
  if (value < 0) {
    return fail(
      invalidParams(`Invalid non-negative integer: ${text}`, { code: 'parameter_invalid_integer', param }),
    );
  }
  return { ok: true, value };
}

function checkMetadata(metadata: '' | Record<string, string> | undefined): Validated<Record<string, string>> {
  const out: Record<string, string> = {};
  if (metadata === undefined || metadata === '') return { ok: true, value: out };
  const entries = Object.entries(metadata);
  if (entries.length > 50) {
    return fail(invalidParams('Invalid metadata: metadata can have up to 50 keys.', { param: 'metadata' }));
  }
  for (const [key, value] of entries) {
    const param = paramName(['metadata', key]);
    if (key.length > 40) {
      return fail(
        invalidParams(`Invalid metadata: keys can be up to 40 characters long (${key}).`, { param }),
      );
    }
    if (/[[\]]/.test(key)) {
      return fail(invalidParams('Invalid metadata: keys cannot contain square brackets.', { param }));
    }
    if (value.length > 500) {
      return fail(invalidParams('Invalid metadata: values can be up to 500 characters long.', { param }));
    }
    // An empty value unsets the key.
    if (value !== '') out[key] = value;
  }
  return { ok: true, value: out };
}

function checkExpiresAt(text: string | undefined, nowSeconds: number): Validated<number> {
  if (text === undefined) return { ok: true, value: nowSeconds + MAX_LIFETIME_S };
  const value = Number(text);
  if (value < nowSeconds + MIN_LIFETIME_S) {
    return fail(
      invalidParams(
        'The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.',
        { param: 'expires_at' },
      ),
    );
  }
  if (value > nowSeconds + MAX_LIFETIME_S) {
    return fail(
      invalidParams('The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.', {
        param: 'expires_at',
      }),
    );
  }
  return { ok: true, value };
}

function checkExpand(expand: string[] | undefined): Validated<boolean> {
  for (const [i, path] of (expand ?? []).entries()) {
    if (path !== 'payment_intent') {
      return fail(
        invalidParams(
          `This property cannot be expanded (${path}). The sandbox expands payment_intent only.`,
          {
            param: paramName(['expand', i]),
          },
        ),
      );
    }
  }
  return { ok: true, value: (expand ?? []).length > 0 };
}

function missing(param: string): ApiResponse {
  return invalidParams(`Missing required param: ${param}.`, { code: 'parameter_missing', param });
}

function fail(response: ApiResponse): { ok: false; response: ApiResponse } {
  return { ok: false, response };
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

type Issue = z.ZodError['issues'][number];

/** The first zod issue, worded as Stripe words the same mistake. */
function issueResponse(issue: Issue | undefined): ApiResponse {
  if (issue === undefined) return invalidParams('Invalid request.');
  const param = paramName(issue.path);
  switch (issue.code) {
    case 'unrecognized_keys': {
      const key = paramName([...issue.path, issue.keys[0] ?? '']);
      return invalidParams(`Received unknown parameter: ${key}`, { code: 'parameter_unknown', param: key });
    }
    case 'invalid_type':
      if (issue.input === undefined) return missing(param);
      return invalidParams(`Invalid ${wireKind(issue.expected)}: ${param}`, { param });
    case 'too_small':
      if (issue.origin === 'string') {
        return invalidParams(
          `You passed an empty string for '${param}'. We assume empty values are an attempt to unset a parameter; however '${param}' cannot be unset. You should remove '${param}' from your request or supply a non-empty value.`,
          { code: 'parameter_invalid_empty', param },
        );
      }
      return invalidParams(`Invalid ${param}: must contain at least ${String(issue.minimum)} item(s).`, {
        param,
      });
    case 'too_big':
      if (issue.origin === 'string') {
        return invalidParams(`Invalid ${param}: must be at most ${String(issue.maximum)} characters long.`, {
          param,
        });
      }
      return invalidParams(`Invalid ${param}: must contain at most ${String(issue.maximum)} item(s).`, {
        param,
      });
    case 'custom': {
      const kind = typeof issue.params?.['kind'] === 'string' ? issue.params['kind'] : 'value';
      const code = typeof issue.params?.['stripeCode'] === 'string' ? issue.params['stripeCode'] : undefined;
      const shown = typeof issue.input === 'string' ? issue.input : '';
      const message = kind === 'url' ? 'Not a valid URL' : `Invalid ${kind}: ${shown}`;
      return invalidParams(message, { param, ...(code === undefined ? {} : { code }) });
    }
    default:
      return invalidParams(`Invalid ${param}: ${issue.message}`, { param });
  }
}

function wireKind(expected: string): string {
  if (expected === 'object' || expected === 'record') return 'hash';
  return expected;
}
