import { z } from 'zod';
import { PayRouterError } from '../core/errors.js';
import type {
  Binding,
  IntentRecord,
  PlannedAttempt,
  ProviderAttempt,
  RunLease,
  RunState,
  StoredResult,
} from '../core/intent/record.js';
import { PAYMENT_STATUSES } from '../core/intent/status.js';
import type { StatusChange } from './types.js';

/**
 * Runtime shapes of what a store holds, used to validate records read back from a shared backend
 * (another instance, another version, or a hand-edited key may have written them): data that
 * crosses a trust boundary. Records the engine built itself get only `checkRecord`'s cheap
 * structural check on the way in.
 * The key checks at the bottom make the build fail when `types.ts` and these schemas drift apart.
 */

const paymentStatusSchema = z.enum(PAYMENT_STATUSES);
const RUN_STATES = [
  'unused',
  'running',
  'done',
  'refunding',
  'refunded',
] as const satisfies readonly RunState[];
const runStates: ReadonlySet<string> = new Set(RUN_STATES);
const paymentStatuses: ReadonlySet<string> = new Set(PAYMENT_STATUSES);
const msEpoch = z.number().nonnegative();

export const bindingSchema = z.object({
  tool: z.string(),
  argsHash: z.string(),
  amount: z.number().int().positive(),
  currency: z.string(),
  subject: z.string(),
}) satisfies z.ZodType<Binding>;

export const providerAttemptSchema = z.object({
  providerId: z.string().min(1),
  paymentId: z.string().min(1),
  url: z.string(),
  status: paymentStatusSchema,
  rawStatus: z.string(),
  idempotencyKey: z.string(),
  createdAt: msEpoch,
  expiresAt: msEpoch.optional(),
  action: z
    .discriminatedUnion('kind', [
      z.object({ kind: z.literal('redirect'), url: z.string() }),
      z.object({ kind: z.literal('invoice'), invoice: z.string(), scheme: z.string() }),
      z.object({ kind: z.literal('credential_required'), requirements: z.unknown() }),
    ])
    .optional(),
  settlement: z
    .object({
      state: z.enum(['settling', 'settled', 'failed']),
      at: msEpoch,
      receipt: z.record(z.string(), z.unknown()).optional(),
      reason: z.string().optional(),
    })
    .optional(),
}) satisfies z.ZodType<ProviderAttempt>;

export const plannedAttemptSchema = z.object({
  providerId: z.string().min(1),
  idempotencyKey: z.string(),
  expiresAt: msEpoch,
  plannedAt: msEpoch,
  returnUrls: z.object({ success: z.string(), cancel: z.string() }).optional(),
}) satisfies z.ZodType<PlannedAttempt>;

export const runLeaseSchema = z.object({
  owner: z.string(),
  fence: z.number().int().nonnegative(),
  until: msEpoch.optional(),
}) satisfies z.ZodType<RunLease>;

export const storedResultSchema = z.object({
  result: z.record(z.string(), z.unknown()),
  completedAt: msEpoch,
}) satisfies z.ZodType<StoredResult>;

export const intentRecordSchema = z.object({
  id: z.string().min(1),
  version: z.number().int().positive(),
  binding: bindingSchema,
  argsJson: z.string(),
  description: z.string(),
  status: paymentStatusSchema,
  eligible: z.array(z.string()),
  attempts: z.array(providerAttemptSchema),
  plannedAttempt: plannedAttemptSchema.optional(),
  run: z.enum(RUN_STATES),
  lease: runLeaseSchema.optional(),
  fence: z.number().int().nonnegative(),
  result: storedResultSchema.optional(),
  resultDelivered: z.boolean().optional(),
  runErrors: z.array(z.string()),
  free: z.literal(true).optional(),
  createdAt: msEpoch,
  updatedAt: msEpoch,
  expiresAt: msEpoch,
}) satisfies z.ZodType<IntentRecord>;

export const statusChangeSchema = z.object({
  intentId: z.string().min(1),
  status: paymentStatusSchema,
  version: z.number().int().positive(),
}) satisfies z.ZodType<StatusChange>;

/** Short, value-free description of why a record failed validation (paths and messages only). */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.message}`)
    .join('; ');
}

/*
 * Input checks shared by every store, so the memory and Redis stores accept and refuse the same
 * things. A failure is a programming error in the caller, reported with a stable code.
 */

/**
 * The cheap check of a record the engine built, before a store keeps it: the fields a store and
 * its indexes rely on, without walking the record through zod (that is for what comes back from
 * a shared backend). A failure is a programming error in the caller.
 */
export function checkRecord(
  record: IntentRecord,
  /** The stored copy it replaces, checked when it was stored: parts shared with it are not walked again. */
  stored?: IntentRecord,
): IntentRecord {
  const problem = structuralProblem(record, stored);
  if (problem !== undefined) {
    throw new PayRouterError('store_invalid_record', `Refusing to store intent record: ${problem}`);
  }
  return record;
}

function structuralProblem(r: IntentRecord, stored: IntentRecord | undefined): string | undefined {
  if (typeof r !== 'object' || r === null) return '(root): expected an object';
  if (typeof r.id !== 'string' || r.id.length === 0) return 'id: expected a non-empty string';
  if (!Number.isInteger(r.version) || r.version < 1) return 'version: expected a positive integer';
  const b = r.binding;
  // A stored record is frozen all the way down: what it shares was checked when it was stored.
  if (stored === undefined || b !== stored.binding) {
    if (typeof b !== 'object' || b === null) return 'binding: expected an object';
    if (typeof b.tool !== 'string' || typeof b.argsHash !== 'string' || typeof b.subject !== 'string')
      return 'binding: tool, argsHash and subject must be strings';
    if (!Number.isInteger(b.amount) || b.amount <= 0) return 'binding.amount: expected a positive integer';
    if (typeof b.currency !== 'string') return 'binding.currency: expected a string';
  }
  if (typeof r.argsJson !== 'string') return 'argsJson: expected a string';
  if (!paymentStatuses.has(r.status)) return `status: invalid value "${String(r.status)}"`;
  if (!runStates.has(r.run)) return `run: invalid value "${String(r.run)}"`;
  if (!Array.isArray(r.eligible) || !Array.isArray(r.attempts) || !Array.isArray(r.runErrors))
    return 'eligible, attempts and runErrors must be arrays';
  if (stored === undefined || r.attempts !== stored.attempts) {
    const problem = attemptsProblem(r.attempts);
    if (problem !== undefined) return problem;
  }
  if (!Number.isInteger(r.fence) || r.fence < 0) return 'fence: expected a non-negative integer';
  if (!Number.isFinite(r.createdAt)) return 'createdAt: expected a number';
  if (!Number.isFinite(r.updatedAt)) return 'updatedAt: expected a number';
  if (!Number.isFinite(r.expiresAt)) return 'expiresAt: expected a number';
  return undefined;
}

function attemptsProblem(attempts: IntentRecord['attempts']): string | undefined {
  for (const a of attempts) {
    if (
      typeof a?.providerId !== 'string' ||
      a.providerId === '' ||
      typeof a.paymentId !== 'string' ||
      a.paymentId === ''
    )
      return 'attempts: providerId and paymentId must be non-empty strings';
    if (!paymentStatuses.has(a.status)) return `attempts.status: invalid value "${String(a.status)}"`;
  }
  return undefined;
}

export function checkStatusChange(change: StatusChange): StatusChange {
  // The engine's own changes take the cheap path; only a bad one goes through zod, for its message.
  if (
    typeof change === 'object' &&
    change !== null &&
    typeof change.intentId === 'string' &&
    change.intentId.length > 0 &&
    paymentStatuses.has(change.status) &&
    Number.isInteger(change.version) &&
    change.version > 0 &&
    Object.keys(change).length === 3
  )
    return { intentId: change.intentId, status: change.status, version: change.version };
  const parsed = statusChangeSchema.safeParse(change);
  if (!parsed.success) {
    throw new PayRouterError(
      'store_invalid_change',
      `Invalid status change: ${describeIssues(parsed.error)}`,
    );
  }
  return parsed.data;
}

export function checkTtl(ttlMs: number, what: string): number {
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw new PayRouterError(
      'store_invalid_ttl',
      `${what}: ttl must be a positive number of ms, got ${ttlMs}`,
    );
  }
  return Math.ceil(ttlMs);
}

export function checkVersion(expectedVersion: number): number {
  if (!Number.isInteger(expectedVersion) || expectedVersion < 1) {
    throw new PayRouterError(
      'store_invalid_version',
      `expectedVersion must be a positive integer, got ${expectedVersion}`,
    );
  }
  return expectedVersion;
}

// Compile-time drift checks: a field added to a type in types.ts but not here (or the reverse)
// is a type error on the matching line below.
type KeyDrift<A, B> = Exclude<keyof A, keyof B> | Exclude<keyof B, keyof A>;
type NoDrift<A, B> = [KeyDrift<A, B>] extends [never] ? true : KeyDrift<A, B>;
const schemasMatchTypes: [
  NoDrift<IntentRecord, z.infer<typeof intentRecordSchema>>,
  NoDrift<Binding, z.infer<typeof bindingSchema>>,
  NoDrift<ProviderAttempt, z.infer<typeof providerAttemptSchema>>,
  NoDrift<PlannedAttempt, z.infer<typeof plannedAttemptSchema>>,
  NoDrift<RunLease, z.infer<typeof runLeaseSchema>>,
  NoDrift<StoredResult, z.infer<typeof storedResultSchema>>,
  NoDrift<StatusChange, z.infer<typeof statusChangeSchema>>,
  // Every record the types allow must also fit the schema's input.
  IntentRecord extends z.input<typeof intentRecordSchema> ? true : 'IntentRecord does not fit the schema',
] = [true, true, true, true, true, true, true, true];
void schemasMatchTypes;
