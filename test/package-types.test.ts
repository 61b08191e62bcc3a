// The published declarations as a user's compiler sees them: the files of test/fixtures/types/
// compile strictly in a temporary project whose node_modules/payrouter is this repository (so
// `'payrouter'` means dist/ and its declarations). Each `@ts-expect-error` line is a mistake the
// types must catch: tsc reports the directive as unused when the line compiles. Needs dist/
// (npm test builds before vitest).
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './support/tools.js';

const exec = promisify(execFile);
const FIXTURES = join(REPO_ROOT, 'test/fixtures/types');
const fixtures = readdirSync(FIXTURES).filter((f) => f.endsWith('.ts'));

let work: string;
let diagnostics = '';

beforeAll(async () => {
  if (!existsSync(join(REPO_ROOT, 'dist/index.d.ts'))) {
    throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
  }
  work = mkdtempSync(join(tmpdir(), 'payrouter-types-'));
  const modules = join(work, 'node_modules');
  mkdirSync(modules);
  for (const entry of readdirSync(join(REPO_ROOT, 'node_modules'))) {
    if (entry.startsWith('.') || entry === 'payrouter') continue;
    symlinkSync(join(REPO_ROOT, 'node_modules', entry), join(modules, entry));
  }
  symlinkSync(REPO_ROOT, join(modules, 'payrouter'));
  writeFileSync(join(work, 'package.json'), JSON.stringify({ name: 'types', private: true, type: 'module' }));
  writeFileSync(
    join(work, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        skipLibCheck: true,
        noEmit: true,
        types: ['node'],
      },
      files: fixtures.map((f) => join(FIXTURES, f)),
    }),
  );
  try {
    await exec(process.execPath, [join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', work], {
      cwd: work,
    });
  } catch (error) {
    diagnostics = (error as { stdout?: string }).stdout ?? String(error);
  }
}, 120_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the published types', () => {
  it('has fixtures to compile', () => {
    expect(fixtures).toContain('provider-ids.ts');
  });

  for (const file of fixtures) {
    it(`${file}: compiles, and every @ts-expect-error line is an error`, () => {
      const errors = diagnostics
        .split('\n')
        .filter((line) => line.includes(file))
        .map((line) => line.slice(line.indexOf(file)));
      expect(errors).toEqual([]);
    });
  }

  it('reports nothing outside the fixtures', () => {
    const stray = diagnostics
      .split('\n')
      .filter((line) => line.trim() !== '' && !/fixtures\/types\/|^\s/.test(line));
    expect(stray).toEqual([]);
  });
});
