// `node --import ./bench/support/as-built.mjs file.ts`: runs TypeScript sources compiled the way
// the published package is (esbuild, no keepNames), for measures of memory per call.
import { register } from 'node:module';

register('./as-built-hooks.mjs', import.meta.url);
