// `npm run bench` (import part): dataio import side by side with psql \copy (one session, and two
// sessions on pre-split halves), pgloader where installed, and dataio at several worker counts, in one
// run, alternating, medians over ROUNDS rounds. Prints a markdown table of times and ratios.
// Env: ROWS (default 2000000), ROUNDS (default 3), WORKERS (default "1,2,4,8,32"), BATCH (dataio --batch-size),
// BENCH_ONLY=json (only dataio CSV, NDJSON and JSON array with defaults: no psql, pgloader or worker sweep),
// BENCH_ONLY=csv (only psql in one and two sessions and dataio CSV with defaults: for large ROWS, to
// see how the gap to psql grows with the input).
// VARIANTS: extra dataio rows with these flags, ';' between rows ("--batch-size 16MiB;--workers 3"), run
// with the rest in every round (to compare a setting with the defaults in one run).
// Where /usr/bin/time exists, the dataio process's CPU seconds (user + system) are shown too.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync, createReadStream, createWriteStream, statSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import pg from 'pg';
import { startServers, stopServers } from '../scripts/pg-servers.mjs';
import { timed } from './timed.mjs';

const root = new URL('..', import.meta.url).pathname;
const ROWS = Number(process.env.ROWS ?? 2_000_000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const WORKERS = (process.env.WORKERS ?? '1,2,4,8,32').split(',').map(Number);
const ONLY_JSON = process.env.BENCH_ONLY === 'json';
const ONLY_CSV = process.env.BENCH_ONLY === 'csv';
const TIME = existsSync('/usr/bin/time');
const dataDir = join(root, 'bench/data');
mkdirSync(dataDir, { recursive: true });
const csv = join(dataDir, `bench-${ROWS}.csv`);
const ndjson = join(dataDir, `bench-${ROWS}.ndjson`);
const jsonArray = join(dataDir, `bench-${ROWS}.json`);
const DDL = 'id bigint, name text, category text, value double precision, created_at timestamptz, description text';


async function splitHalves() {
  const a = join(dataDir, `bench-${ROWS}-a.csv`);
  const b = join(dataDir, `bench-${ROWS}-b.csv`);
  if (existsSync(a) && existsSync(b)) return [a, b];
  // The benchmark data has no newline inside fields, so lines are records.
  const half = Math.floor(ROWS / 2);
  const wa = createWriteStream(a);
  const wb = createWriteStream(b);
  let header;
  let n = -1;
  let rest = '';
  for await (const chunk of createReadStream(csv, { encoding: 'utf8', highWaterMark: 1 << 20 })) {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop();
    let outA = '';
    let outB = '';
    for (const line of lines) {
      if (n === -1) {
        header = line;
        outA += line + '\n';
        outB += line + '\n';
      } else if (n < half) outA += line + '\n';
      else outB += line + '\n';
      n++;
    }
    if (!wa.write(outA)) await once(wa, 'drain');
    if (!wb.write(outB)) await once(wb, 'drain');
  }
  if (rest) wb.write(rest + '\n');
  wa.end();
  wb.end();
  await Promise.all([once(wa, 'finish'), once(wb, 'finish')]);
  void header;
  return [a, b];
}

function median(xs) {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
}

for (const [file, format] of ONLY_CSV ? [[csv, 'csv']] : [[csv, 'csv'], [ndjson, 'ndjson'], [jsonArray, 'json']]) {
  if (!existsSync(file)) {
    console.error(`generating ${ROWS} rows into ${file}`);
    execFileSync(process.execPath, [join(root, 'bench/gen-csv.mjs'), String(ROWS), file, format], { stdio: 'inherit' });
  }
}
const [halfA, halfB] = await splitHalves();
const servers = await startServers({ only: ['pg18-embedded'] });
const server = servers[0];
const client = new pg.Client({ connectionString: server.url });
await client.connect();
const size = statSync(csv).size;
const hasPgloader = !ONLY_JSON && !ONLY_CSV && (() => {
  try {
    execFileSync('pgloader', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

async function freshTable() {
  await client.query('DROP TABLE IF EXISTS bench');
  await client.query(`CREATE TABLE bench (${DDL})`);
  await client.query('CHECKPOINT');
}

async function check() {
  const r = await client.query('SELECT count(*)::int AS n FROM bench');
  if (r.rows[0].n !== ROWS) throw new Error(`expected ${ROWS} rows, found ${r.rows[0].n}`);
}

const psqlCopy = (file) => ['psql', [server.url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', `\\copy bench from '${file}' with (format csv, header true)`]];
const dataio = (workers, file = csv, extra = []) => [join(root, 'bin/dataio'), ['import', file, '--table', 'bench', '--db', server.url, '--progress', 'none', '--json', ...(workers ? ['--workers', String(workers)] : []), ...(process.env.BATCH ? ['--batch-size', process.env.BATCH] : []), ...extra]];
let importIds = 0;

const allCases = [
  ['psql \\copy, 1 session', async () => (await timed(...psqlCopy(csv))).secs],
  ['psql \\copy, 2 sessions on halves', async () => {
    const started = process.hrtime.bigint();
    await Promise.all([timed(...psqlCopy(halfA)), timed(...psqlCopy(halfB))]);
    return Number(process.hrtime.bigint() - started) / 1e9;
  }],
  ['dataio (defaults)', async () => run(dataio())],
  // This machine sets NODE_EXTRA_CA_CERTS, which Node 20 reads (with its whole root store) at every
  // start-up, before any code runs, unless bin/dataio's shell line keeps it from doing so (as run
  // here): the same import in an environment without it, which should now take the same time.
  ...(process.env.NODE_EXTRA_CA_CERTS ? [['dataio (defaults), NODE_EXTRA_CA_CERTS unset', async () => run(dataio(), 'dataio (defaults), NODE_EXTRA_CA_CERTS unset', { NODE_EXTRA_CA_CERTS: '' })]] : []),
  ['dataio NDJSON (defaults)', async () => run(dataio(undefined, ndjson), 'dataio NDJSON (defaults)')],
  ['dataio JSON array (defaults)', async () => run(dataio(undefined, jsonArray), 'dataio JSON array (defaults)')],
  // The price of the safety modes on clean input: a savepoint per batch; a commit and ledger row per batch.
  ['dataio --on-error skip', async () => run(dataio(undefined, csv, ['--on-error', 'skip']), 'dataio --on-error skip')],
  ['dataio --import-id', async () => run(dataio(undefined, csv, ['--import-id', `bench-${process.pid}-${++importIds}`]), 'dataio --import-id')],
  ...WORKERS.map((w) => [`dataio --workers ${w}`, async () => run(dataio(w))]),
];
const variants = (process.env.VARIANTS ?? '').split(';').map((v) => v.trim()).filter((v) => v !== '');
const variantCases = variants.map((v) => [`dataio ${v}`, async () => run(dataio(undefined, csv, v.split(/\s+/)), `dataio ${v}`)]);
const cases = ONLY_JSON
  ? allCases.filter(([name]) => / \(defaults\)$/.test(name))
  : ONLY_CSV
    ? [...allCases.filter(([name]) => name.startsWith('psql') || name.startsWith('dataio (defaults)')), ...variantCases]
    : [...allCases, ...variantCases];
const rss = {};
const cpu = {};
async function run([cmd, args], name, env) {
  const opts = env ? { env: { ...process.env, ...env } } : {};
  const r = TIME ? await timed('/usr/bin/time', ['-f', 'dataio-cpu %U %S', cmd, ...args], opts) : await timed(cmd, args, opts);
  const summary = JSON.parse(r.out.trim().split('\n').pop());
  const label = name ?? (args.includes('--workers') ? `dataio --workers ${args[args.indexOf('--workers') + 1]}` : 'dataio (defaults)');
  rss[label] = Math.max(rss[label] ?? 0, summary.peakRssMB ?? 0);
  const t = /dataio-cpu ([\d.]+) ([\d.]+)/.exec(r.err);
  if (t) (cpu[label] ??= []).push(Number(t[1]) + Number(t[2]));
  return r.secs;
}

const times = Object.fromEntries(cases.map(([name]) => [name, []]));
try {
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? cases : [...cases].reverse();
    for (const [name, fn] of order) {
      await freshTable();
      const secs = await fn();
      await check();
      times[name].push(secs);
      console.error(`round ${round + 1}: ${name}: ${secs.toFixed(2)} s`);
    }
  }
  if (hasPgloader && process.env.PGLOADER !== "0") {
    await freshTable();
    const load = join(dataDir, 'bench.load');
    writeFileSync(load, `LOAD CSV FROM '${csv}' (id, name, category, value, created_at, description)
      INTO ${server.url}?bench (id, name, category, value, created_at, description)
      WITH skip header = 1, fields terminated by ',', fields optionally enclosed by '"', fields escaped by double-quote;\n`);
    const r = await timed('pgloader', ['--quiet', load]);
    await check();
    times['pgloader (1 round)'] = [r.secs];
    console.error(`pgloader: ${r.secs.toFixed(2)} s`);
  }
} finally {
  await client.end();
  await stopServers(servers);
}

const base = ONLY_JSON ? NaN : median(times['psql \\copy, 2 sessions on halves']);
const one = ONLY_JSON ? NaN : median(times['psql \\copy, 1 session']);
console.log(`\nImport of ${ROWS.toLocaleString('en-US')} rows (${(size / 1e6).toFixed(0)} MB CSV), PostgreSQL 18 embedded, median of ${ROUNDS} alternating rounds:\n`);
const dataioCsv = median(times['dataio (defaults)']);
console.log('| way | median s | vs 2 psql sessions | vs 1 psql session | vs dataio CSV | peak RSS MB | dataio CPU s |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const [name, xs] of Object.entries(times)) {
  const m = median(xs);
  const vsCsv = name.startsWith('dataio') ? `${(m / dataioCsv).toFixed(2)}×` : '';
  const vs = (b) => (Number.isNaN(b) ? '' : `${(m / b).toFixed(2)}×`);
  console.log(`| ${name} | ${m.toFixed(2)} | ${vs(base)} | ${vs(one)} | ${vsCsv} | ${rss[name] ? rss[name].toFixed(0) : ''} | ${cpu[name] ? median(cpu[name]).toFixed(2) : ''} |`);
}
console.log(`\nCommand: ROWS=${ROWS} ROUNDS=${ROUNDS}${process.env.BENCH_ONLY ? ` BENCH_ONLY=${process.env.BENCH_ONLY}` : ''} node bench/import.mjs (part of npm run bench); ${new Date().toISOString().slice(0, 10)}, Node ${process.version}.`);
