import qs from 'qs';

/**
 * Stripe's wire format: `a[b][0][c]=v` form encoding, every value a string. `URLSearchParams`
 * does not nest, and qs's defaults turn array index 21+ into object keys and cut deep paths,
 * hence the limits.
 */
export type FormValue = string | FormValue[] | { [key: string]: FormValue };
export type FormParams = { [key: string]: FormValue };

const PARSE_OPTIONS = { arrayLimit: 1000, depth: 20, parameterLimit: 10_000 } as const;

export function parseForm(text: string): FormParams {
  if (text === '') return {};
  return normalize(qs.parse(text, PARSE_OPTIONS)) as FormParams;
}

function normalize(value: unknown): FormValue {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(normalize);
  if (value !== null && typeof value === 'object') {
    const out: { [key: string]: FormValue } = {};
    for (const [key, v] of Object.entries(value)) {
      if (v !== undefined) out[key] = normalize(v);
    }
    return out;
  }
  return '';
}

/** A stable text form of parameters (object keys sorted) to compare idempotent requests. */
export function canonicalParams(value: FormValue): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalParams).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalParams(value[k] as FormValue)}`).join(',')}}`;
}

/** Stripe's name for a parameter path: `line_items[0][price_data][currency]`. */
export function paramName(path: ReadonlyArray<PropertyKey>): string {
  const [first, ...rest] = path.map(String);
  return (first ?? '') + rest.map((p) => `[${p}]`).join('');
}
