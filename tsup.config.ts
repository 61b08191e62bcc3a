import { defineConfig } from 'tsup';

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
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node20',
    splitting: true,
  },
  {
    entry: { 'sandbox-cli': 'src/sandbox/cli.ts' },
    format: ['esm'],
    sourcemap: true,
    target: 'node20',
    banner: { js: '#!/usr/bin/env node' },
  },
]);
