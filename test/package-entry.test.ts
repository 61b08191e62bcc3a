import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);

// The built package, loaded the way users load it: by name, through package.json "exports".
beforeAll(() => {
  if (!existsSync('dist/index.js') || !existsSync('dist/index.cjs')) {
    throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
  }
});

const probes = {
  payrouter: ['PayRouter', 'memoryStore', 'redisStore', 'parseMoney', 'ProviderError', 'isPayRouterError'],
  'payrouter/providers': ['WalleotProvider', 'StripeProvider'],
  'payrouter/sandbox': ['startSandbox', 'startWalleotSandbox', 'startStripeSandbox'],
} as const;

describe('entry points', () => {
  for (const [entry, names] of Object.entries(probes)) {
    it(`${entry} loads from CommonJS`, async () => {
      const { stdout } = await run(process.execPath, [
        '-e',
        `const m = require(${JSON.stringify(entry)}); console.log(JSON.stringify(${JSON.stringify(names)}.map((n) => typeof m[n])))`,
      ]);
      expect(JSON.parse(stdout)).toEqual(names.map(() => 'function'));
    });

    it(`${entry} loads from ESM`, async () => {
      const { stdout } = await run(process.execPath, [
        '--input-type=module',
        '-e',
        `const m = await import(${JSON.stringify(entry)}); console.log(JSON.stringify(${JSON.stringify(names)}.map((n) => typeof m[n])))`,
      ]);
      expect(JSON.parse(stdout)).toEqual(names.map(() => 'function'));
    });
  }

  it('isPayRouterError recognises errors of both builds, where instanceof does not', async () => {
    // One process loading both copies, as an app whose dependencies mix import and require does.
    const script = `
      import { createRequire } from 'node:module';
      const esm = await import('payrouter');
      const cjs = createRequire(process.cwd() + '/')('payrouter');
      const thrown = (m) => { try { m.parseMoney('1.005', 'USD'); } catch (e) { return e; } };
      const fromEsm = thrown(esm);
      const fromCjs = thrown(cjs);
      console.log(JSON.stringify({
        sameClass: esm.PayRouterError === cjs.PayRouterError,
        instanceofAcross: fromCjs instanceof esm.PayRouterError,
        esmSeesCjs: esm.isPayRouterError(fromCjs),
        cjsSeesEsm: cjs.isPayRouterError(fromEsm),
        codes: [fromEsm.code, fromCjs.code],
        names: [fromEsm.name, fromCjs.name],
        plainError: esm.isPayRouterError(Object.assign(new Error('x'), { code: 'invalid_amount' })),
        notAnError: [null, undefined, 'invalid_amount', { code: 'invalid_amount' }].some(esm.isPayRouterError),
      }));`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script]);
    expect(JSON.parse(stdout)).toEqual({
      sameClass: false,
      instanceofAcross: false,
      esmSeesCjs: true,
      cjsSeesEsm: true,
      codes: ['invalid_amount', 'invalid_amount'],
      names: ['MoneyError', 'MoneyError'],
      plainError: false,
      notAnError: false,
    });
  });

  it('ships type declarations for both formats', () => {
    for (const file of ['index', 'providers', 'sandbox']) {
      expect(existsSync(`dist/${file}.d.ts`)).toBe(true);
      expect(existsSync(`dist/${file}.d.cts`)).toBe(true);
    }
  });
});
