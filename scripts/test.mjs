// `npm test`: build, start the real PostgreSQL servers the suite needs, run node's test runner over
// the compiled tests (it prints the pass/fail counts), stop the servers, exit with the runner's code.
// DATAIO_TEST_ONLY=unit skips the servers; DATAIO_TEST_FILTER=<substring> picks test files.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServers, stopServers } from './pg-servers.mjs';

const root = new URL('..', import.meta.url).pathname;
process.chdir(root);

const build = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);
// The CLI the tests run (bin/dataio) is the bundle of the same sources.
const bundle = spawnSync(process.execPath, [join(root, 'scripts/bundle.mjs')], { stdio: 'inherit' });
if (bundle.status !== 0) process.exit(bundle.status ?? 1);

function testFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...testFiles(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

const filter = process.env.DATAIO_TEST_FILTER;
let files = testFiles(join(root, 'dist/test'));
// Match against the path under dist/test/, not the checkout's own path.
if (filter) files = files.filter((f) => f.slice(join(root, 'dist/test').length).includes(filter));
const unitOnly = process.env.DATAIO_TEST_ONLY === 'unit';
if (unitOnly) files = files.filter((f) => f.includes('/unit/'));

let servers = [];
if (!unitOnly) {
  servers = await startServers();
  console.log(`# servers: ${servers.map((s) => s.name).join(', ')}`);
}
// Each run's temporary files in one directory, removed at the end (readable by the postgres OS user,
// for the tests that compare with a server-side COPY FROM a file).
const runTmp = mkdtempSync(join(tmpdir(), 'dataio-run-'));
chmodSync(runTmp, 0o755);
const env = {
  ...process.env,
  TMPDIR: runTmp,
  DATAIO_TEST_SERVERS: JSON.stringify(servers.map(({ name, url, home }) => ({ name, url, home }))),
};
// Tests choose their database explicitly; the user's own settings must not leak in.
for (const k of Object.keys(env)) if (k.startsWith('PG') || k === 'DATABASE_URL') delete env[k];

const tap = join(mkdtempSync(join(tmpdir(), 'dataio-tap-')), 'results.tap');
const code = await new Promise((resolve) => {
  const child = spawn(
    process.execPath,
    ['--test', '--test-concurrency=1', '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tap}`, ...files],
    { stdio: 'inherit', env },
  );
  child.on('close', (c) => resolve(c ?? 1));
});
await stopServers(servers);
rmSync(runTmp, { recursive: true, force: true });
// The plain closing line: counts from the TAP summary.
const summary = readFileSync(tap, 'utf8');
const count = (k) => Number(new RegExp(`^# ${k} (\\d+)$`, 'm').exec(summary)?.[1] ?? 0);
// A test cancelled (its suite's before-hook failed, or it timed out) did not pass: it counts as failed.
console.log(`${count('pass')} passed, ${count('fail') + count('cancelled')} failed, ${count('skipped')} skipped`);
process.exit(code);
