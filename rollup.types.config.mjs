// The package's declarations, one file per entry point plus one shared file, for both module
// formats (dist/*.d.ts for import, dist/*.d.cts for require). tsup's own dts build names shared
// types with one-letter aliases in a hashed chunk; here every export keeps its own name, so
// go-to-definition lands on a readable declaration.
import { dts } from 'rollup-plugin-dts';

const input = {
  index: 'src/index.ts',
  providers: 'src/providers.ts',
  sandbox: 'src/sandbox.ts',
};

const output = (extension) => ({
  dir: 'dist',
  format: 'es',
  entryFileNames: `[name]${extension}`,
  chunkFileNames: `shared${extension}`,
  minifyInternalExports: false,
});

export default {
  input,
  output: [output('.d.ts'), output('.d.cts')],
  // Everything from node_modules stays an import (the SDK, zod, ioredis, stripe, node:*).
  external: (id) => !id.startsWith('.') && !id.startsWith('/') && !id.startsWith('src/'),
  plugins: [dts({ tsconfig: 'tsconfig.json', compilerOptions: { noEmit: false } })],
};
