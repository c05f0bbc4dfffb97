// `npm test`: build, start the real PostgreSQL servers the suite needs, run node's test runner over
// the compiled tests (it prints the pass/fail counts), stop the servers, exit with the runner's code.
// DATAIO_TEST_ONLY=unit skips the servers; DATAIO_TEST_FILTER=<substring> picks test files.
// Tiers (pg15-default, pgbouncer-*, citus, tls: scripts/pg-servers.mjs startTiers) start only when a
// selected test file imports test/support/tiers and names them (naming none means all of them), and
// not at all with DATAIO_TEST_TIERS_OFF=1. Everything started is stopped at the end, on ^C too.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServers, startTiers, stopAll, TIERS } from './pg-servers.mjs';

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

// The tiers the selected files use: a file that imports test/support/tiers uses the tiers it names as
// string literals, or every tier when it names none.
function tiersUsedBy(files) {
  const used = new Set();
  for (const f of files) {
    const src = readFileSync(f, 'utf8');
    if (!/support\/tiers\.js['"]/.test(src)) continue;
    const named = TIERS.filter((t) => new RegExp(`['"\`]${t}['"\`]`).test(src));
    for (const t of named.length ? named : TIERS) used.add(t);
  }
  return used;
}

let wantTiers = [];
let skippedTiers = [];
const notRun = (why) => (t) => ({ tier: t, why });
if (unitOnly) skippedTiers = TIERS.map(notRun('DATAIO_TEST_ONLY=unit'));
else if (process.env.DATAIO_TEST_TIERS_OFF && process.env.DATAIO_TEST_TIERS_OFF !== '0') skippedTiers = TIERS.map(notRun('DATAIO_TEST_TIERS_OFF is set'));
else {
  const used = tiersUsedBy(files);
  wantTiers = TIERS.filter((t) => used.has(t));
  skippedTiers = TIERS.filter((t) => !used.has(t)).map(notRun('no selected test file uses it'));
}

// Each run's temporary files in one directory, removed at the end (readable by the postgres OS user,
// for the tests that compare with a server-side COPY FROM a file).
const runTmp = mkdtempSync(join(tmpdir(), 'dataio-run-'));
chmodSync(runTmp, 0o755);
const tapDir = mkdtempSync(join(tmpdir(), 'dataio-tap-'));
const tap = join(tapDir, 'results.tap');
let child;
let stopping = false;
async function cleanUp() {
  await stopAll();
  rmSync(runTmp, { recursive: true, force: true });
  rmSync(tapDir, { recursive: true, force: true });
}
// ^C (or a kill): stop the tests, then every server and tier started so far, and remove the temp dirs.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    console.error(`\n# ${sig}: stopping the servers`);
    child?.kill('SIGTERM');
    cleanUp().finally(() => process.exit(128 + constants.signals[sig]));
  });
}

// The main servers and the tiers start side by side.
const started = Date.now();
const [main, tiers] = await Promise.allSettled([
  unitOnly ? [] : startServers(),
  wantTiers.length ? startTiers({ want: wantTiers }) : { servers: [], skipped: [] },
]);
if (stopping) await new Promise(() => {}); // interrupted: the signal handler stops everything and exits
if (main.status === 'rejected' || tiers.status === 'rejected') {
  for (const r of [main, tiers]) if (r.status === 'rejected') console.error(`could not start the test servers: ${r.reason?.stack ?? r.reason}`);
  stopping = true;
  await cleanUp();
  process.exit(1);
}
const servers = main.value;
const tierServers = tiers.value.servers;
skippedTiers = [...skippedTiers, ...tiers.value.skipped].sort((a, b) => TIERS.indexOf(a.tier) - TIERS.indexOf(b.tier));
const names = (list) => (list.length ? list.map((s) => s.name).join(', ') : 'none');
console.log(`# servers: ${names(servers)}; tiers: ${names(tierServers)} (started in ${((Date.now() - started) / 1000).toFixed(1)} s)`);
// One entry per reason: "a, b (why)".
const byWhy = new Map();
for (const { tier, why } of skippedTiers) byWhy.set(why, [...(byWhy.get(why) ?? []), tier]);
console.log(`# tiers skipped: ${byWhy.size ? [...byWhy].map(([why, t]) => `${t.join(', ')} (${why})`).join('; ') : 'none'}`);

const env = {
  ...process.env,
  TMPDIR: runTmp,
  DATAIO_TEST_SERVERS: JSON.stringify(servers.map(({ name, url, home }) => ({ name, url, home }))),
  DATAIO_TEST_TIERS: JSON.stringify({ servers: tierServers, skipped: skippedTiers }),
};
// Tests choose their database explicitly; the user's own settings must not leak in.
for (const k of Object.keys(env)) if (k.startsWith('PG') || k === 'DATABASE_URL') delete env[k];

const code = await new Promise((resolve) => {
  child = spawn(
    process.execPath,
    ['--test', '--test-concurrency=1', '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tap}`, ...files],
    { stdio: 'inherit', env },
  );
  child.on('error', (err) => {
    console.error(`could not run the tests: ${err.message}`);
    resolve(1);
  });
  child.on('close', (c) => resolve(c ?? 1));
});
if (stopping) await new Promise(() => {}); // a signal handler is stopping everything and will exit
// The plain closing line: counts from the TAP summary.
let summary = '';
try {
  summary = readFileSync(tap, 'utf8');
} catch {
  // the runner wrote no results
}
stopping = true;
await cleanUp();
const count = (k) => Number(new RegExp(`^# ${k} (\\d+)$`, 'm').exec(summary)?.[1] ?? 0);
// A test cancelled (its suite's before-hook failed, or it timed out) did not pass: it counts as failed.
console.log(`${count('pass')} passed, ${count('fail') + count('cancelled')} failed, ${count('skipped')} skipped`);
process.exit(code);
