import type { EligibleProvider } from '../../core/route/route.js';

// No SDK import here: both SDK lines (src/mcp with 1.x, src/mcp-v2 with v2) build their method
// question from this, and their elicitation schema types both accept this plain JSON shape.

/** The method title: kind and speed, so the payer can compare at a glance. */
export function methodTitle(option: Pick<EligibleProvider, 'label' | 'instant'>): string {
  return `${option.label}: ${option.instant ? 'instant' : 'opens a checkout page'}`;
}

/** The form that asks "how would you like to pay?": one method of the offered ones, and whether to remember it. */
export interface ChoiceFormSchema {
  [key: string]: unknown;
  type: 'object';
  properties: {
    method: {
      type: 'string';
      title: string;
      oneOf: Array<{ const: string; title: string }>;
      default?: string;
    };
    remember?: { type: 'boolean'; title: string; default: boolean };
  };
  required: string[];
}

/**
 * Both SDKs compile every new elicitation schema object they see, and clients compare them: the
 * same offer reuses one frozen object, bounded so that many distinct offers cannot grow it.
 */
const schemas = new Map<string, ChoiceFormSchema>();
const MAX_CACHED_SCHEMAS = 256;

/** The method-choice form for these offers; `remember` adds the "use this method next time" box. */
export function choiceSchema(eligible: readonly EligibleProvider[], remember: boolean): ChoiceFormSchema {
  const key = `${remember ? 1 : 0}\u0002${eligible.map((e) => `${e.providerId}\u0000${methodTitle(e)}`).join('\u0001')}`;
  const cached = schemas.get(key);
  if (cached !== undefined) return cached;
  const schema: ChoiceFormSchema = deepFreeze({
    type: 'object',
    properties: {
      method: {
        type: 'string',
        title: 'Payment method',
        oneOf: eligible.map((e) => ({ const: e.providerId, title: methodTitle(e) })),
        ...(eligible[0] ? { default: eligible[0].providerId } : {}),
      },
      ...(remember
        ? { remember: { type: 'boolean' as const, title: 'Use this method next time', default: false } }
        : {}),
    },
    required: ['method'],
  });
  if (schemas.size >= MAX_CACHED_SCHEMAS) schemas.clear();
  schemas.set(key, schema);
  return schema;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
