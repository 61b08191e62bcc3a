import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * DESIGN §3: arrows point one way. Every import of every src/**\/*.ts file (unit tests beside the
 * code excepted; static, re-export, dynamic `import()`, `import('…')` types) is parsed with the
 * TypeScript compiler and checked:
 *
 * - core imports only core;
 * - store and providers import only core and their own folder (a provider folder only itself;
 *   files at the root of providers/, such as the mapping function, may use every provider);
 * - engine imports core, store and providers; providers by type only, except the mapping
 *   function of providers/config.ts; never mcp, http or sandbox;
 * - mcp and http import engine and core, never each other;
 * - mcp-v2 (the v2 SDK layer) imports engine, core and mcp's shared parts; nothing imports it;
 * - the 1.x SDK (`@modelcontextprotocol/sdk`) only under src/mcp/ and in the entry points; the v2
 *   packages (`@modelcontextprotocol/server`, `client`, `core`) only under src/mcp-v2/ and its entry;
 * - sandbox imports nothing of the product: only `import type` from the entry points.
 */

const SRC = resolve('src');
// augment.ts is the opt-in global type augmentation for `server.registerTool(…, { price })`.
const ENTRY_POINTS = new Set(['index.ts', 'providers.ts', 'sandbox.ts', 'augment.ts', 'mcp-v2.ts']);

/**
 * Arrows that point the wrong way today, listed exactly (importer → imported file), so the suite
 * stays green while they are being removed. Each is owned by the layer it starts in; whoever
 * removes one deletes its line here (a line that no longer matches an import fails the test).
 */
const KNOWN_EXCEPTIONS: ReadonlyArray<readonly [string, string, string]> = [
  // mcp → http and mcp → store: PayRouter builds the HTTP handler and the default store.
  ['mcp/pay-router.ts', 'http/index.ts', 'router.httpHandler()'],
  ['mcp/pay-router.ts', 'store/memory.ts', 'default memoryStore()'],
  ['mcp/pay-router.ts', 'store/types.ts', 'PaymentStore type'],
  // The sandbox CLI is the `payrouter-sandbox` bin: an entry point that lives under sandbox/.
  ['sandbox/cli.ts', 'sandbox.ts', 'the bin starts the sandbox entry'],
];

interface Edge {
  from: string;
  /** A file under src/ (relative), or a package name. */
  to: string;
  external: boolean;
  typeOnly: boolean;
  line: number;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    // Unit tests kept beside the code (`*.test.ts`) are not product code: they may use test support.
    return path.endsWith('.ts') && !path.endsWith('.test.ts') ? [path] : [];
  });
}

function importsOf(file: string): Edge[] {
  const text = readFileSync(file, 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const from = relative(SRC, file);
  const edges: Edge[] = [];
  const add = (specifier: string, typeOnly: boolean, node: ts.Node) => {
    const external = !specifier.startsWith('.');
    const to = external
      ? specifier
      : relative(SRC, resolve(dirname(file), specifier)).replace(/\.js$/, '.ts');
    const line = source.getLineAndCharacterOfPosition(node.getStart()).line + 1;
    edges.push({ from, to, external, typeOnly, line });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const named = clause?.namedBindings;
      const typeOnly =
        clause !== undefined &&
        (clause.isTypeOnly ||
          (clause.name === undefined &&
            named !== undefined &&
            ts.isNamedImports(named) &&
            named.elements.length > 0 &&
            named.elements.every((e) => e.isTypeOnly)));
      add(node.moduleSpecifier.text, typeOnly, node);
    } else if (
      ts.isExportDeclaration(node) &&
      node.moduleSpecifier !== undefined &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      const clause = node.exportClause;
      const typeOnly =
        node.isTypeOnly ||
        (clause !== undefined &&
          ts.isNamedExports(clause) &&
          clause.elements.length > 0 &&
          clause.elements.every((e) => e.isTypeOnly));
      add(node.moduleSpecifier.text, typeOnly, node);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] !== undefined &&
      ts.isStringLiteral(node.arguments[0])
    ) {
      add(node.arguments[0].text, false, node);
    } else if (
      ts.isImportTypeNode(node) &&
      ts.isLiteralTypeNode(node.argument) &&
      ts.isStringLiteral(node.argument.literal)
    ) {
      add(node.argument.literal.text, true, node);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return edges;
}

/** `core`, `engine`, … for files in a folder; `entry` for the entry points src/index.ts etc. */
const layerOf = (path: string) =>
  path.includes('/') ? path.split('/')[0]! : ENTRY_POINTS.has(path) ? 'entry' : `src/${path}`;
/** `providers/stripe` for a file in a provider's folder, `providers` for one at its root. */
const providerFolderOf = (path: string) =>
  path
    .split('/')
    .slice(0, path.split('/').length > 2 ? 2 : 1)
    .join('/');

/** Why `edge` points the wrong way, or undefined when it is allowed. */
function violation(edge: Edge): string | undefined {
  const from = layerOf(edge.from);
  if (edge.external) {
    if (/^@modelcontextprotocol\/(server|client|core)(\/|$)/.test(edge.to)) {
      return from === 'mcp-v2' || edge.from === 'mcp-v2.ts'
        ? undefined
        : 'the v2 MCP SDK is imported only under src/mcp-v2/ and by its entry point';
    }
    if (edge.to.startsWith('@modelcontextprotocol/')) {
      if (from === 'mcp-v2' || edge.from === 'mcp-v2.ts') return 'payrouter/mcp-v2 never loads the 1.x SDK';
      if (from !== 'mcp' && from !== 'entry')
        return 'the MCP SDK is imported only under src/mcp/ and by the entry points';
    }
    return undefined;
  }
  const to = layerOf(edge.to);
  if (from === 'entry' || from === to) {
    if (from === 'providers' && providerFolderOf(edge.from) !== 'providers') {
      const own = providerFolderOf(edge.from);
      if (!edge.to.startsWith(`${own}/`)) return `${own} imports only core and its own folder`;
    }
    return undefined;
  }
  switch (from) {
    case 'core':
      return 'core imports only core';
    case 'store':
      return to === 'core' ? undefined : 'store imports only core';
    case 'providers':
      return to === 'core' ? undefined : 'providers import only core';
    case 'engine':
      if (to === 'core' || to === 'store') return undefined;
      if (to === 'providers') {
        return edge.typeOnly || edge.to === 'providers/config.ts'
          ? undefined
          : 'engine knows providers by interface: type-only imports, except the mapping function';
      }
      return `engine never imports ${to}`;
    case 'mcp':
    case 'http':
      return to === 'engine' || to === 'core' ? undefined : `${from} imports only engine and core`;
    case 'mcp-v2':
      return to === 'engine' || to === 'core' || to === 'mcp'
        ? undefined
        : 'mcp-v2 imports only engine, core and the shared parts of mcp';
    case 'sandbox':
      return to === 'entry' && edge.typeOnly
        ? undefined
        : 'sandbox imports nothing of the product but public types (import type from an entry point)';
    default:
      return `unknown layer ${from}`;
  }
}

const edges = sourceFiles(SRC).flatMap(importsOf);
const isKnown = (edge: Edge) => KNOWN_EXCEPTIONS.some(([from, to]) => edge.from === from && edge.to === to);

describe('the dependency rule (DESIGN §3)', () => {
  it('reads the imports of every layer', () => {
    for (const layer of [
      'core',
      'engine',
      'store',
      'providers',
      'mcp',
      'mcp-v2',
      'http',
      'sandbox',
      'entry',
    ]) {
      expect(
        edges.some((e) => layerOf(e.from) === layer),
        layer,
      ).toBe(true);
    }
    // The parser sees every import form: type-only, dynamic (the lazy SDKs), re-exports.
    expect(edges).toContainEqual(
      expect.objectContaining({ from: 'providers/stripe/sdk.ts', to: 'stripe', typeOnly: false }),
    );
    expect(edges).toContainEqual(
      expect.objectContaining({ from: 'index.ts', to: 'core/errors.ts', typeOnly: false }),
    );
  });

  it('no import points the wrong way', () => {
    const wrong = edges
      .filter((e) => !isKnown(e))
      .flatMap((e) => {
        const why = violation(e);
        return why === undefined
          ? []
          : [`src/${e.from}:${e.line} imports ${e.to}${e.typeOnly ? ' (type)' : ''}: ${why}`];
      });
    expect(wrong).toEqual([]);
  });

  it('every listed exception is still a real, wrong-way import (delete the line once it is gone)', () => {
    for (const [from, to] of KNOWN_EXCEPTIONS) {
      const matching = edges.filter((e) => e.from === from && e.to === to);
      expect(matching.length, `${from} → ${to}`).toBeGreaterThan(0);
      for (const edge of matching) expect(violation(edge), `${from} → ${to}`).toBeDefined();
    }
  });

  it('the rule itself: a wrong arrow is caught', () => {
    const edge = (from: string, to: string, typeOnly = false): Edge => ({
      from,
      to,
      external: !to.endsWith('.ts'),
      typeOnly,
      line: 1,
    });
    expect(violation(edge('core/money/money.ts', 'engine/runtime.ts'))).toBeDefined();
    expect(violation(edge('engine/attempts.ts', 'providers/stripe/provider.ts'))).toBeDefined();
    expect(violation(edge('engine/attempts.ts', 'providers/stripe/provider.ts', true))).toBeUndefined();
    expect(violation(edge('engine/options.ts', 'providers/config.ts'))).toBeUndefined();
    expect(violation(edge('http/pay-page.ts', 'mcp/call-flow.ts', true))).toBeDefined();
    expect(violation(edge('providers/stripe/provider.ts', 'providers/walleot/tables.ts'))).toBeDefined();
    expect(violation(edge('providers/config.ts', 'providers/walleot/provider.ts'))).toBeUndefined();
    expect(violation(edge('sandbox/stripe.ts', 'core/errors.ts'))).toBeDefined();
    expect(violation(edge('sandbox/stripe.ts', 'index.ts', true))).toBeUndefined();
    expect(violation(edge('sandbox/stripe.ts', 'index.ts'))).toBeDefined();
    expect(violation(edge('engine/runtime.ts', '@modelcontextprotocol/sdk/types.js'))).toBeDefined();
    expect(violation(edge('mcp/present.ts', '@modelcontextprotocol/sdk/types.js'))).toBeUndefined();
    expect(violation(edge('mcp/present.ts', '@modelcontextprotocol/server'))).toBeDefined();
    expect(violation(edge('mcp-v2/install.ts', '@modelcontextprotocol/server'))).toBeUndefined();
    expect(violation(edge('mcp-v2/install.ts', '@modelcontextprotocol/sdk/types.js', true))).toBeDefined();
    expect(violation(edge('mcp-v2/install.ts', 'mcp/present.ts'))).toBeUndefined();
    expect(violation(edge('mcp-v2/install.ts', 'http/index.ts'))).toBeDefined();
    expect(violation(edge('mcp/pay-router.ts', 'mcp-v2/install.ts'))).toBeDefined();
  });
});
