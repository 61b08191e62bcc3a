/**
 * Logging with secrets removed. Every line the library emits goes through `redact`, which drops
 * values under secret-looking keys and masks anything shaped like an API key or webhook secret,
 * plus any exact secret registered with `registerSecret` (the configured provider keys).
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

const SECRET_KEY = /(api[-_]?key|secret|token|password|authorization|signature|cookie)/i;
const SECRET_VALUE =
  /\b(sk|rk|pk|whsec)_(test|live)?_?[A-Za-z0-9_]{6,}|\bwhsec_[A-Za-z0-9_]+|\bBearer\s+[^\s"',]+/g;
const REDACTED = '[redacted]';

const registeredSecrets = new Set<string>();

/** Remember a secret so any log line containing it is masked (used for configured API keys). */
export function registerSecret(secret: string | undefined): void {
  if (secret && secret.length >= 4) registeredSecrets.add(secret);
}

export function redactText(text: string): string {
  let out = text;
  for (const secret of registeredSecrets) {
    if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  return out.replace(SECRET_VALUE, REDACTED);
}

/** Deep copy with secrets removed. Handles cycles and Errors. */
export function redact(value: unknown, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return '[circular]';
  seen.add(value);
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return { name: value.name, message: redactText(value.message), ...(code === undefined ? {} : { code }) };
  }
  if (Array.isArray(value)) return value.map((v) => redact(v, seen));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    out[key] = SECRET_KEY.test(key) && v !== undefined && v !== null ? REDACTED : redact(v, seen);
  }
  return out;
}

/** A logger that redacts before handing lines to `sink`. */
export function redactingLogger(sink: Logger): Logger {
  const wrap =
    (level: LogLevel) =>
    (message: string, fields?: Record<string, unknown>): void => {
      sink[level](
        redactText(message),
        fields === undefined ? undefined : (redact(fields) as Record<string, unknown>),
      );
    };
  return { debug: wrap('debug'), info: wrap('info'), warn: wrap('warn'), error: wrap('error') };
}

function debugEnabled(): boolean {
  const pattern = process.env['DEBUG'] ?? '';
  return pattern.split(/[\s,]+/).some((p) => p === '*' || p === 'payrouter' || p.startsWith('payrouter'));
}

/**
 * The default sink: warnings and errors to stderr; debug and info only when `DEBUG=payrouter*`.
 * Never stdout: on stdio transports stdout is the protocol.
 */
export function consoleLogger(options: { debug?: boolean } = {}): Logger {
  const verbose = options.debug ?? debugEnabled();
  const write = (level: LogLevel, message: string, fields?: Record<string, unknown>) => {
    if (!verbose && (level === 'debug' || level === 'info')) return;
    const suffix = fields === undefined ? '' : ` ${JSON.stringify(fields)}`;
    process.stderr.write(`payrouter ${level}: ${message}${suffix}\n`);
  };
  return redactingLogger({
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
  });
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
