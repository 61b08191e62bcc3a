/**
 * Logging with secrets removed. Every line the library emits goes through `redact`, which drops
 * values under secret-looking keys and masks anything shaped like an API key or webhook secret,
 * plus any exact secret registered with `registerSecret` (the configured provider keys).
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/**
 * Where payrouter's log lines go. The four methods are all a logger needs; the two optional ones
 * let a logger filter by part of the library and let payrouter skip lines nobody will see.
 */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  /**
   * Optional: the logger for one part of the library (`'walleot'`, `'stripe'`, `'routing'`,
   * `'store'`, ...). The default console logger names its lines `payrouter:walleot` and so on.
   * A logger without it gets every part's lines itself.
   */
  namespaced?(name: string): Logger;
  /**
   * Optional: false when lines of `level` would be dropped. payrouter then builds and redacts
   * nothing for them, so a disabled level costs nothing.
   */
  isLevelEnabled?(level: LogLevel): boolean;
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

/** The logger for one part of the library: `logger.namespaced(name)` where it has one, else `logger`. */
export function namespaced(logger: Logger, name: string): Logger {
  return typeof logger.namespaced === 'function' ? logger.namespaced(name) : logger;
}

/** True unless the logger says that lines of `level` would be dropped. */
export function isLevelEnabled(logger: Logger, level: LogLevel): boolean {
  return typeof logger.isLevelEnabled === 'function' ? logger.isLevelEnabled(level) : true;
}

/**
 * A logger that redacts before handing lines to `sink`. A line the sink would drop (its
 * `isLevelEnabled`) is dropped first, before any redaction work.
 */
export function redactingLogger(sink: Logger): Logger {
  // Parts ask for their namespace on every call: each is made once.
  const children = new Map<string, Logger>();
  const wrap =
    (level: LogLevel) =>
    (message: string, fields?: Record<string, unknown>): void => {
      if (!isLevelEnabled(sink, level)) return;
      sink[level](
        redactText(message),
        fields === undefined ? undefined : (redact(fields) as Record<string, unknown>),
      );
    };
  return {
    debug: wrap('debug'),
    info: wrap('info'),
    warn: wrap('warn'),
    error: wrap('error'),
    namespaced: (name) => {
      let child = children.get(name);
      if (child === undefined) {
        child = redactingLogger(namespaced(sink, name));
        children.set(name, child);
      }
      return child;
    },
    isLevelEnabled: (level) => isLevelEnabled(sink, level),
  };
}

/**
 * Which namespaces a `DEBUG` value turns on, as the `debug` package reads it: names separated by
 * commas or spaces, `*` matching anything, a leading `-` excluding (exclusions win).
 */
export function debugNamespaces(pattern: string): (namespace: string) => boolean {
  const include: RegExp[] = [];
  const exclude: RegExp[] = [];
  for (const part of pattern.split(/[\s,]+/)) {
    if (part === '' || part === '-') continue;
    const negated = part.startsWith('-');
    const glob = negated ? part.slice(1) : part;
    const source = glob
      .split('*')
      .map((piece) => piece.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*?');
    (negated ? exclude : include).push(new RegExp(`^${source}$`));
  }
  return (namespace) => !exclude.some((re) => re.test(namespace)) && include.some((re) => re.test(namespace));
}

export interface ConsoleLoggerOptions {
  /**
   * Which debug and info lines to print: `true` all, `false` none, or a `DEBUG`-style pattern such
   * as `'payrouter:walleot,payrouter:stripe'` or `'payrouter*,-payrouter:store'`. Default: the
   * `DEBUG` environment variable, read when the logger is made. Warnings and errors always print.
   */
  debug?: boolean | string;
  /** This logger's namespace; `namespaced(name)` appends `:name`. Default `payrouter`. */
  namespace?: string;
  /** Where lines go. Default: stderr (never stdout: on stdio transports stdout is the protocol). */
  stream?: { write(line: string): unknown };
}

/**
 * The default logger: one line per event on stderr, `<ISO time> <namespace> <level>: <message>
 * <fields as JSON>`, secrets redacted. Warnings and errors always; debug and info for the
 * namespaces `DEBUG` names (`DEBUG=payrouter*` for all of payrouter, `DEBUG=payrouter:stripe`
 * for one part).
 */
export function consoleLogger(options: ConsoleLoggerOptions = {}): Logger {
  const setting = options.debug ?? process.env['DEBUG'] ?? '';
  const verbose = typeof setting === 'boolean' ? () => setting : debugNamespaces(setting);
  const stream = options.stream ?? process.stderr;
  return makeConsoleLogger(options.namespace ?? 'payrouter', verbose, stream);
}

function makeConsoleLogger(
  namespace: string,
  verbose: (namespace: string) => boolean,
  stream: { write(line: string): unknown },
): Logger {
  const chatty = verbose(namespace);
  const enabled = (level: LogLevel) => chatty || level === 'warn' || level === 'error';
  const children = new Map<string, Logger>();
  const write = (level: LogLevel) => (message: string, fields?: Record<string, unknown>) => {
    if (!enabled(level)) return;
    stream.write(
      `${new Date().toISOString()} ${namespace} ${level}: ${redactText(message)}${formatFields(fields)}\n`,
    );
  };
  return {
    debug: write('debug'),
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
    namespaced: (name) => {
      let child = children.get(name);
      if (child === undefined) {
        child = makeConsoleLogger(`${namespace}:${name}`, verbose, stream);
        children.set(name, child);
      }
      return child;
    },
    isLevelEnabled: enabled,
  };
}

function formatFields(fields: Record<string, unknown> | undefined): string {
  if (fields === undefined) return '';
  try {
    return ` ${JSON.stringify(redact(fields), (_key, value) => (typeof value === 'bigint' ? String(value) : value))}`;
  } catch {
    return ' [fields not serialisable]';
  }
}

/** Drops every line, at no cost. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  namespaced: () => silentLogger,
  isLevelEnabled: () => false,
};
