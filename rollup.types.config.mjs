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
// The v2 layer's declarations stay in mcp-v2.d.ts: they import @modelcontextprotocol/server, an
// optional peer, which the other entry points' declarations must not need.
const v2Layer = resolve('src/mcp-v2');

const output = (extension) => ({
  dir: 'dist',
  format: 'es',
  entryFileNames: `[name]${extension}`,
  chunkFileNames: `shared${extension}`,
  // Everything but the entry modules themselves (and the v2 layer) in one shared file.
  manualChunks: (id) => (entryFiles.has(id) || id.startsWith(v2Layer) ? undefined : 'shared'),
  minifyInternalExports: false,
  // No bare `import 'ioredis'`-style lines in the entries: each file imports what it uses.
  hoistTransitiveImports: false,
});

export default {
  input,
  output: [output('.d.ts'), output('.d.cts')],
  // Everything from node_modules stays an import (the SDK, zod, ioredis, stripe, node:*).
  external: (id) => !id.startsWith('.') && !id.startsWith('/') && !id.startsWith('src/'),
  plugins: [dts({ tsconfig: 'tsconfig.json', compilerOptions: { noEmit: false } })],
};
