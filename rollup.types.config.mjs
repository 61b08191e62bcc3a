// The package's declarations, one file per entry point plus one shared file, for both module
// formats (dist/*.d.ts for import, dist/*.d.cts for require). tsup's own dts build names shared
// types with one-letter aliases in a hashed chunk; here every export keeps its own name, so
// go-to-definition lands on a readable declaration.
import { resolve } from 'node:path';
import { dts } from 'rollup-plugin-dts';

const input = {
  index: 'src/index.ts',
  providers: 'src/providers.ts',
  sandbox: 'src/sandbox.ts',
  augment: 'src/augment.ts',
  'mcp-v2': 'src/mcp-v2.ts',
};

const entryFiles = new Set(Object.values(input).map((file) => resolve(file)));

const output = (extension) => ({
  dir: 'dist',
  format: 'es',
  entryFileNames: `[name]${extension}`,
  chunkFileNames: `shared${extension}`,
  // Everything but the entry modules themselves in one shared file, whatever the module graph.
  manualChunks: (id) => (entryFiles.has(id) ? undefined : 'shared'),
  minifyInternalExports: false,
});

export default {
  input,
  output: [output('.d.ts'), output('.d.cts')],
  // Everything from node_modules stays an import (the SDK, zod, ioredis, stripe, node:*).
  external: (id) => !id.startsWith('.') && !id.startsWith('/') && !id.startsWith('src/'),
  plugins: [dts({ tsconfig: 'tsconfig.json', compilerOptions: { noEmit: false } })],
};
