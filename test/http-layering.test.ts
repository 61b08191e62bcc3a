// DESIGN.md §3: the HTTP layer works over engine/desk only. It imports no MCP code, no store, no
// provider and no other part of the engine, so the pages cannot reach around the desk.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './support/tools.js';

const HTTP_DIR = join(REPO_ROOT, 'src', 'http');
const ALLOWED = [/^\.\/[a-z-]+\.js$/, /^\.\.\/engine\/desk\.js$/, /^\.\.\/core\//, /^node:/, /^zod$/];

function importsOf(source: string): string[] {
  return [...source.matchAll(/\bfrom\s+'([^']+)'|\bimport\s*\(\s*'([^']+)'\s*\)/g)].map(
    (m) => m[1] ?? m[2] ?? '',
  );
}

describe('src/http imports only engine/desk, core and its own files', () => {
  for (const file of readdirSync(HTTP_DIR).filter((f) => f.endsWith('.ts'))) {
    it(file, () => {
      const imports = importsOf(readFileSync(join(HTTP_DIR, file), 'utf8'));
      expect(imports.length).toBeGreaterThan(0);
      for (const specifier of imports) {
        expect(
          ALLOWED.some((allowed) => allowed.test(specifier)),
          `${file} imports ${specifier}`,
        ).toBe(true);
      }
    });
  }
});
