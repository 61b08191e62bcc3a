// The logger module: DEBUG namespaces as the `debug` package reads them, ISO time stamps, the
// level check before any redaction work, and loggers written by users (four methods) still working.
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  consoleLogger,
  debugNamespaces,
  isLevelEnabled,
  type Logger,
  namespaced,
  redactingLogger,
  registerSecret,
  silentLogger,
} from '../src/core/logger.js';
import { StripeProvider, WalleotProvider } from '../src/providers.js';

function capture() {
  const lines: string[] = [];
  return { lines, stream: { write: (line: string) => lines.push(line) } };
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /;

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('debugNamespaces (the DEBUG convention)', () => {
  const cases: Array<[string, string, boolean]> = [
    ['payrouter*', 'payrouter', true],
    ['payrouter*', 'payrouter:walleot', true],
    ['payrouter:*', 'payrouter', false],
    ['payrouter:*', 'payrouter:stripe', true],
    ['payrouter', 'payrouter', true],
    ['payrouter', 'payrouter:walleot', false],
    ['payrouter:walleot,payrouter:stripe', 'payrouter:stripe', true],
    ['payrouter:walleot payrouter:stripe', 'payrouter:walleot', true],
    ['payrouter:walleot,payrouter:stripe', 'payrouter:store', false],
    ['payrouter*,-payrouter:store', 'payrouter:store', false],
    ['payrouter*,-payrouter:store', 'payrouter:routing', true],
    ['-payrouter:store,payrouter*', 'payrouter:store', false],
    ['payrouter*,-payrouter:store*', 'payrouter:store:redis', false],
    ['*', 'payrouter:confirmation', true],
    ['*,-payrouter:*', 'payrouter:walleot', false],
    ['express:*', 'payrouter:walleot', false],
    ['', 'payrouter', false],
    ['pay.router', 'payXrouter', false],
    ['payrouter:*:redis', 'payrouter:store:redis', true],
  ];
  for (const [pattern, namespace, expected] of cases) {
    it(`DEBUG=${JSON.stringify(pattern)} ${expected ? 'enables' : 'leaves out'} ${namespace}`, () => {
      expect(debugNamespaces(pattern)(namespace)).toBe(expected);
    });
  }
});

describe('consoleLogger', () => {
  it('stamps each line with the ISO time and its namespace, fields as JSON', () => {
    const { lines, stream } = capture();
    const logger = consoleLogger({ debug: true, stream });
    logger.info('started', { port: 4010 });
    namespaced(logger, 'walleot').debug('walleot request', { method: 'POST' });
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(ISO);
    expect(lines[0]!.replace(ISO, '')).toBe('payrouter info: started {"port":4010}\n');
    expect(lines[1]!.replace(ISO, '')).toBe('payrouter:walleot debug: walleot request {"method":"POST"}\n');
    const stamp = Date.parse(lines[0]!.slice(0, 24));
    expect(Number.isNaN(stamp)).toBe(false);
  });

  it('prints debug and info only for the namespaces DEBUG names; warnings and errors always', () => {
    vi.stubEnv('DEBUG', 'payrouter:walleot,payrouter:store*,-payrouter:store:redis');
    const { lines, stream } = capture();
    const root = consoleLogger({ stream });
    for (const name of ['walleot', 'stripe', 'store']) {
      const logger = namespaced(root, name);
      logger.debug(`${name} debug`);
      logger.info(`${name} info`);
      logger.warn(`${name} warn`);
    }
    namespaced(namespaced(root, 'store'), 'redis').debug('redis debug');
    namespaced(namespaced(root, 'store'), 'memory').debug('memory debug');
    root.debug('root debug');
    root.error('root error');
    expect(lines.map((line) => line.replace(ISO, '').trimEnd())).toEqual([
      'payrouter:walleot debug: walleot debug',
      'payrouter:walleot info: walleot info',
      'payrouter:walleot warn: walleot warn',
      'payrouter:stripe warn: stripe warn',
      'payrouter:store debug: store debug',
      'payrouter:store info: store info',
      'payrouter:store warn: store warn',
      'payrouter:store:memory debug: memory debug',
      'payrouter error: root error',
    ]);
  });

  it('reads DEBUG=payrouter* as every part of payrouter, and no DEBUG as none', () => {
    vi.stubEnv('DEBUG', 'payrouter*');
    const on = capture();
    namespaced(consoleLogger({ stream: on.stream }), 'routing').debug('route chosen');
    expect(on.lines).toHaveLength(1);

    vi.stubEnv('DEBUG', '');
    const off = capture();
    const quiet = consoleLogger({ stream: off.stream });
    namespaced(quiet, 'routing').debug('route chosen');
    quiet.info('hello');
    expect(off.lines).toEqual([]);
    expect(quiet.isLevelEnabled?.('debug')).toBe(false);
    expect(quiet.isLevelEnabled?.('warn')).toBe(true);
  });

  it('never prints a secret, in the message or the fields', () => {
    registerSecret('exact-secret-value-123');
    const { lines, stream } = capture();
    const logger = namespaced(consoleLogger({ debug: true, stream }), 'stripe');
    logger.debug('calling with sk_live_abcdefghijklmnop and exact-secret-value-123', {
      apiKey: 'anything',
      nested: { authorization: 'Bearer xyz.abc', note: 'whsec_1234567890' },
      error: new Error('failed for exact-secret-value-123'),
      big: 10n,
    });
    const text = lines.join('');
    for (const secret of [
      'sk_live_abcdefghijklmnop',
      'exact-secret-value-123',
      'anything',
      'xyz.abc',
      'whsec_1234567890',
    ]) {
      expect(text).not.toContain(secret);
    }
    expect(text).toContain('[redacted]');
    expect(text).toContain('"big":"10"');
  });

  it('does no redaction work for a level that is off', () => {
    const { lines, stream } = capture();
    const logger = namespaced(consoleLogger({ debug: false, stream }), 'walleot');
    const fields = {
      get costly(): never {
        throw new Error('fields of a disabled line were read');
      },
    };
    logger.debug('not shown', fields);
    logger.info('not shown', fields);
    expect(lines).toEqual([]);
  });
});

describe('loggers written by users', () => {
  /** Just the four methods, as a user writes one. */
  function plainLogger() {
    const seen: Array<[string, string, Record<string, unknown> | undefined]> = [];
    const logger: Logger = {
      debug: (m, f) => seen.push(['debug', m, f]),
      info: (m, f) => seen.push(['info', m, f]),
      warn: (m, f) => seen.push(['warn', m, f]),
      error: (m, f) => seen.push(['error', m, f]),
    };
    return { logger, seen };
  }

  it('a four-method logger gets every part of the library, redacted', () => {
    const { logger, seen } = plainLogger();
    const wrapped = redactingLogger(logger);
    namespaced(wrapped, 'walleot').debug('request', { token: 'abc' });
    namespaced(namespaced(wrapped, 'store'), 'redis').warn('slow');
    expect(seen).toEqual([
      ['debug', 'request', { token: '[redacted]' }],
      ['warn', 'slow', undefined],
    ]);
    expect(namespaced(logger, 'walleot')).toBe(logger);
    expect(isLevelEnabled(logger, 'debug')).toBe(true);
  });

  it("a logger's isLevelEnabled is asked before any redaction, and namespaced() is used when present", () => {
    const names: string[] = [];
    const seen: string[] = [];
    const make = (name: string): Logger => ({
      debug: (m) => seen.push(`${name} debug ${m}`),
      info: (m) => seen.push(`${name} info ${m}`),
      warn: (m) => seen.push(`${name} warn ${m}`),
      error: (m) => seen.push(`${name} error ${m}`),
      isLevelEnabled: (level) => level !== 'debug',
      namespaced: (child) => {
        names.push(child);
        return make(`${name}:${child}`);
      },
    });
    const child = namespaced(redactingLogger(make('app')), 'stripe');
    expect(names).toEqual(['stripe']);
    child.debug('dropped', {
      get costly(): never {
        throw new Error('fields of a disabled line were read');
      },
    });
    child.info('kept', { apiKey: 'k' });
    expect(child.isLevelEnabled?.('debug')).toBe(false);
    expect(seen).toEqual(['app:stripe info kept']);
  });

  it('providers accept a four-method logger and log through it', () => {
    const { logger } = plainLogger();
    expect(() => new WalleotProvider({ apiKey: 'sk_test_walleot_x', logger })).not.toThrow();
    expect(() => new StripeProvider({ apiKey: 'sk_test_stripe_x', logger })).not.toThrow();
  });

  it('silentLogger drops everything and says so', () => {
    expect(isLevelEnabled(silentLogger, 'error')).toBe(false);
    expect(namespaced(silentLogger, 'walleot')).toBe(silentLogger);
  });
});
