// Every ```ts block of README.md, and every file of examples/, compiles strictly against the built
// package, as a user's code: each is a file of a temporary project whose node_modules/payrouter is
// this repository (so `'payrouter'` means dist/ and its declarations) and whose other packages are
// the repo's. A program of its own: the repository's tsc run also sees src/, whose opt-in
// augmentation (src/augment.ts) would otherwise apply to everything. Needs dist/ (npm test builds
// before vitest).
import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './support/tools.js';

const exec = promisify(execFile);

interface Block {
  /** 1-based line of the opening fence in README.md. */
  line: number;
  code: string;
  file: string;
}

function tsBlocks(markdown: string): Array<Omit<Block, 'file'>> {
  const blocks: Array<Omit<Block, 'file'>> = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i += 1) {
    if (!/^```(ts|typescript)\s*$/.test(lines[i]!)) continue;
    const start = i;
    const body: string[] = [];
    for (i += 1; i < lines.length && !/^```\s*$/.test(lines[i]!); i += 1) body.push(lines[i]!);
    blocks.push({ line: start + 1, code: `${body.join('\n')}\n` });
  }
  return blocks;
}

const blocks: Block[] = tsBlocks(readFileSync(join(REPO_ROOT, 'README.md'), 'utf8')).map((block) => ({
  ...block,
  file: `readme-line-${block.line}.ts`,
}));

const examples = readdirSync(join(REPO_ROOT, 'examples'))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => `examples/${f}`);

let work: string;
let diagnostics = '';

beforeAll(async () => {
  if (!existsSync(join(REPO_ROOT, 'dist/index.d.ts'))) {
    throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
  }
  work = mkdtempSync(join(tmpdir(), 'payrouter-readme-'));
  // node_modules: payrouter is this repository; everything else is the repository's own install.
  const modules = join(work, 'node_modules');
  mkdirSync(modules);
  for (const entry of readdirSync(join(REPO_ROOT, 'node_modules'))) {
    if (entry.startsWith('.') || entry === 'payrouter') continue;
    symlinkSync(join(REPO_ROOT, 'node_modules', entry), join(modules, entry));
  }
  symlinkSync(REPO_ROOT, join(modules, 'payrouter'));
  writeFileSync(
    join(work, 'package.json'),
    JSON.stringify({ name: 'readme-blocks', private: true, type: 'module' }),
  );
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
      files: [...blocks.map((b) => b.file), ...examples],
    }),
  );
  // Each block is a module of its own (a block without import or export would share one scope).
  for (const block of blocks) writeFileSync(join(work, block.file), `${block.code}export {};\n`);
  mkdirSync(join(work, 'examples'));
  for (const file of examples) writeFileSync(join(work, file), readFileSync(join(REPO_ROOT, file)));
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

describe('README.md', () => {
  it('has TypeScript blocks to check', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(3);
  });

  for (const block of blocks) {
    it(`the block at line ${block.line} compiles under strict against the built package`, () => {
      const errors = diagnostics
        .split('\n')
        .filter((line) => line.startsWith(block.file))
        // readme-line-20.ts(3,5): error → README.md line 22
        .map((line) =>
          line.replace(/^[^(]+\((\d+),(\d+)\)/, (_m, l, c) => `README.md:${block.line + Number(l)}:${c}`),
        );
      expect(errors).toEqual([]);
    });
  }

  it('reports nothing outside the blocks and the examples', () => {
    const stray = diagnostics
      .split('\n')
      .filter((line) => line.trim() !== '' && !/^(readme-line-|examples\/|\s)/.test(line));
    expect(stray).toEqual([]);
  });
});

describe('examples/', () => {
  for (const file of examples) {
    it(`${file} compiles under strict against the built package, as a user's file`, () => {
      expect(diagnostics.split('\n').filter((line) => line.startsWith(file))).toEqual([]);
    });
  }
});
