import * as crypto from 'node:crypto';
import { PayRouterError } from './errors.js';

/** Deeper arguments than this are refused: no real tool takes them, and recursion must stay bounded. */
export const MAX_ARGUMENT_DEPTH = 64;

/**
 * JSON with object keys sorted at every depth, so the same arguments always hash the same
 * whatever order the client sent them in. Members that JSON drops (`undefined`, functions) are
 * dropped. Own keys are written as data: `__proto__` is a key like any other, never a prototype.
 * Throws PayRouterError `arguments_too_deep` past MAX_ARGUMENT_DEPTH levels.
 */
export function canonicalJson(value: unknown): string {
  return write(value, 0) ?? 'null';
}

function write(input: unknown, depth: number): string | undefined {
  let value = input;
  if (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as { toJSON?: unknown }).toJSON === 'function'
  ) {
    value = (value as { toJSON: () => unknown }).toJSON();
  }
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null';
    case 'object':
      break;
    default:
      // undefined, functions, symbols: dropped from objects, null in arrays (as JSON does).
      return undefined;
  }
  if (depth >= MAX_ARGUMENT_DEPTH) {
    throw new PayRouterError('arguments_too_deep', `arguments nest deeper than ${MAX_ARGUMENT_DEPTH} levels`);
  }
  // Built by concatenation: no array of parts per object or array.
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      // A hole stays empty, as `map` and `join` left it: the same text, so the same hash.
      if (i in value) out += write(value[i], depth + 1) ?? 'null';
    }
    return `${out}]`;
  }
  let out = '{';
  for (const key of Object.keys(value).sort()) {
    const member = write((value as Record<string, unknown>)[key], depth + 1);
    if (member === undefined) continue;
    if (out.length > 1) out += ',';
    out += `${JSON.stringify(key)}:${member}`;
  }
  return `${out}}`;
}

/** One-shot hashing (Node ≥ 20.12) skips the Hash object a per-call createHash builds. */
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;

export function sha256Hex(text: string): string {
  if (oneShot !== undefined) return oneShot('sha256', text, 'hex');
  return crypto.createHash('sha256').update(text).digest('hex');
}
