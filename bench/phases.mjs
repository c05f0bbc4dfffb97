// Diagnostics, not part of `npm run bench`: where a 2M-row CSV import's time goes, dataio beside psql's
// two sessions on halves, from the server's own log (log_min_duration_statement = 0): `start`, from
// the process's spawn to its first COPY; `body`, from there to the end of its last COPY; `tail`, from
// there until the process is gone (dataio: the two-phase commit and exit; psql's COPY commits itself,
// so its tail is its exit only), and the COPY statements. Alternating rounds, medians.
// Env: ROWS (2000000), ROUNDS (7). Needs bench/data/bench-<ROWS>.csv and its halves: run
// `BENCH_ONLY=csv node bench/import.mjs` once first.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { startServers, stopServers } from '../scripts/pg-servers.mjs';

const root = new URL('..', import.meta.url).pathname;
const ROWS = Number(process.env.ROWS ?? 2_000_000);
const ROUNDS = Number(process.env.ROUNDS ?? 7);
const data = (name) => join(root, 'bench/data', name);
const [csv, halfA, halfB] = [`bench-${ROWS}.csv`, `bench-${ROWS}-a.csv`, `bench-${ROWS}-b.csv`].map(data);
for (const f of [csv, halfA, halfB]) {
  if (!existsSync(f)) {
    console.error(`${f} is missing: run BENCH_ONLY=csv ROWS=${ROWS} node bench/import.mjs once first`);
    process.exit(2);
  }
}

const servers = await startServers({ only: ['pg18-embedded'] });
const server = servers[0];
const client = new pg.Client({ connectionString: server.url });
await client.connect();
try {
  const dir = (await client.query('SHOW data_directory')).rows[0].data_directory;
  const log = join(dirname(dir), 'server.log');
  await client.query('ALTER SYSTEM SET log_min_duration_statement = 0');
  await client.query("ALTER SYSTEM SET log_line_prefix = '%m [%p] '");
  await client.query('SELECT pg_reload_conf()');
  await client.query('DROP TABLE IF EXISTS bench');
  await client.query('CREATE TABLE bench (id bigint, name text, category text, value double precision, created_at timestamptz, description text)');

  const exited = (cmd, args) =>
    new Promise((resolve, reject) => {
      const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}`))));
    });
  const psqlCopy = (file) => exited('psql', [server.url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', `\\copy bench from '${file}' with (format csv, header true)`]);
  const ways = {
    'psql \\copy, 2 sessions on halves': () => Promise.all([psqlCopy(halfA), psqlCopy(halfB)]),
    'dataio (defaults)': () => exited(join(root, 'bin/dataio'), ['import', csv, '--table', 'bench', '--db', server.url, '--progress', 'none', '--quiet']),
  };

  /** The COPY statements the log holds past `offset`: start and end, in ms since the epoch. */
  function copies(offset) {
    const text = readFileSync(log, 'utf8').slice(offset);
    const out = [];
    for (const m of text.matchAll(/^(\S+ \S+) UTC \[\d+\] LOG: {2}duration: ([\d.]+) ms {2}statement: COPY /gm)) {
      const end = Date.parse(`${m[1].replace(' ', 'T')}Z`);
      out.push({ start: end - Number(m[2]), end });
    }
    return out;
  }

  const results = Object.fromEntries(Object.keys(ways).map((w) => [w, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? Object.keys(ways) : Object.keys(ways).reverse();
    for (const way of order) {
      await client.query('TRUNCATE bench');
      await client.query('CHECKPOINT');
      const offset = statSync(log).size;
      const spawned = Date.now();
      await ways[way]();
      const gone = Date.now();
      await new Promise((r) => setTimeout(r, 200)); // the log written
      const c = copies(offset);
      const first = Math.min(...c.map((x) => x.start));
      const last = Math.max(...c.map((x) => x.end));
      const r = { total: gone - spawned, start: first - spawned, body: last - first, tail: gone - last, copies: c.length };
      results[way].push(r);
      console.error(`round ${round + 1}: ${way}: ${JSON.stringify(r)}`);
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`\nWhere the time goes, ${ROWS.toLocaleString('en-US')} CSV rows, PostgreSQL 18 embedded, median ms of ${ROUNDS} alternating rounds (from the server log):\n`);
  console.log('| way | total | start (first COPY) | body (COPYs) | tail (last COPY to exit) | COPY statements |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const [way, rs] of Object.entries(results)) {
    const m = (k) => Math.round(median(rs.map((r) => r[k])));
    console.log(`| ${way} | ${m('total')} | ${m('start')} | ${m('body')} | ${m('tail')} | ${m('copies')} |`);
  }
  console.log(`\nCommand: ROWS=${ROWS} ROUNDS=${ROUNDS} node bench/phases.mjs; ${new Date().toISOString().slice(0, 10)}, Node ${process.version}.`);
} finally {
  await client.end();
  await stopServers(servers);
}
