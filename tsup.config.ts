import { defineConfig, type Options } from 'tsup';

type EsbuildPlugin = NonNullable<Options['esbuildPlugins']>[number];

/** The CLI loads the built `payrouter/sandbox` entry beside it instead of bundling its own copy. */
const cliUsesSandboxEntry: EsbuildPlugin = {
  name: 'cli-uses-sandbox-entry',
  setup(build) {
    build.onResolve({ filter: /^\.\.\/sandbox\.js$/ }, (args) =>
      args.importer.endsWith('cli.ts') ? { path: './sandbox.js', external: true } : undefined,
    );
  },
};

// JavaScript only: the declarations are rolled up by rollup.types.config.mjs (`npm run build`
// runs both; keep the entry points in step). No source maps in the package: they doubled its size
// and embedded the sources.
export default defineConfig([
  {
    entry: {
      index: 'src/index.ts',
      providers: 'src/providers.ts',
      sandbox: 'src/sandbox.ts',
      augment: 'src/augment.ts',
      'mcp-v2': 'src/mcp-v2.ts',
    },
    format: ['esm', 'cjs'],
    clean: true,
    target: 'node20',
    splitting: true,
  },
  {
    entry: { 'sandbox-cli': 'src/sandbox/cli.ts' },
    format: ['esm'],
    target: 'node20',
    banner: { js: '#!/usr/bin/env node' },
    esbuildPlugins: [cliUsesSandboxEntry],
  },
]);
