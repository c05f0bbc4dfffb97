// `npm run bench -- field`: dataio's default import where users' databases are, beside psql in the same
// run, alternating, medians over ROUNDS rounds:
//  - Debian PostgreSQL 15 with max_prepared_transactions = 200 (two-phase commit) and with the default
//    settings (max_prepared_transactions = 0: parallel COPY into staging, one final move), against two
//    psql sessions on pre-split halves and one;
//  - a Citus 13.2 cluster (coordinator + 2 workers on this machine) where Citus is installed: the
//    default import into a hash-distributed table (staging co-located, COPY spread over the nodes),
//    --import-id, and --nodes none, against one psql \copy session through the coordinator.
// Env: ROWS (default 2000000; Citus: CITUS_ROWS, default 1000000), ROUNDS (default 3).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { debianBinDirs, startServers, startTiers, stopAll } from '../scripts/pg-servers.mjs';
import { timed } from './timed.mjs';

const root = new URL('..', import.meta.url).pathname;
const ROWS = Number(process.env.ROWS ?? 2_000_000);
const CITUS_ROWS = Number(process.env.CITUS_ROWS ?? 1_000_000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const dataDir = join(root, 'bench/data');
mkdirSync(dataDir, { recursive: true });
const DDL = 'id bigint, name text, category text, value double precision, created_at timestamptz, description text';

function median(xs) {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
}

function data(rows) {
  const csv = join(dataDir, `bench-${rows}.csv`);
  if (!existsSync(csv)) execFileSync(process.execPath, [join(root, 'bench/gen-csv.mjs'), String(rows), csv, 'csv'], { stdio: 'inherit' });
  const a = join(dataDir, `bench-${rows}-a.csv`);
  const b = join(dataDir, `bench-${rows}-b.csv`);
  if (!existsSync(a) || !existsSync(b)) {
    // The benchmark data has no newline inside fields: lines are records. Both halves keep the header.
    const half = Math.floor(rows / 2) + 1;
    execFileSync('sh', ['-c', `head -n ${half} '${csv}' > '${a}' && (head -n 1 '${csv}'; tail -n +${half + 1} '${csv}') > '${b}'`]);
  }
  return { csv, a, b };
}

async function q(url, sql) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql)).rows;
  } finally {
    await c.end();
  }
}

const psqlCopy = (url, file) => ['psql', [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', `\\copy bench from '${file}' with (format csv, header true)`]];
const dataio = (url, file, extra = []) => [join(root, 'bin/dataio'), ['import', file, '--table', 'bench', '--db', url, '--progress', 'none', '--json', ...extra]];

/**
 * CPU seconds a PostgreSQL server has used so far: its postmaster's and every child's user and system
 * time, with the children it has reaped (backends that ended) in the postmaster's cutime and cstime.
 */
function serverCpu(postmaster) {
  const hz = 100; // USER_HZ, 100 on Linux
  let ticks = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let f;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    } catch {
      continue; // ended meanwhile
    }
    // After the command name: state, ppid, …; utime, stime, cutime, cstime are fields 14–17 of stat.
    if (Number(d) === postmaster || Number(f[1]) === postmaster) ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  }
  return ticks / hz;
}

/** The postmaster's pid of the server at `url` (this machine's: the first line of its postmaster.pid). */
async function postmasterOf(url) {
  const [r] = await q(url, "SELECT current_setting('data_directory') AS dir");
  return Number(readFileSync(join(r.dir, 'postmaster.pid'), 'utf8').split('\n')[0]);
}

/**
 * Alternating rounds of `cases` ([name, () => seconds]) with `fresh()` before each; resolves to medians.
 * With `servers` ([label, postmaster pid]), also the median CPU seconds each server used in each case.
 */
async function rounds(cases, fresh, check, servers = []) {
  const times = Object.fromEntries(cases.map(([n]) => [n, []]));
  const cpu = Object.fromEntries(cases.map(([n]) => [n, servers.map(() => [])]));
  const commit = {};
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, fn] of round % 2 === 0 ? cases : [...cases].reverse()) {
      await fresh();
      const before = servers.map(([, pid]) => serverCpu(pid));
      const r = await fn();
      // Let the postmasters reap the backends that ended, so that their CPU time is counted.
      if (servers.length > 0) await new Promise((res) => setTimeout(res, 300));
      servers.forEach(([, pid], i) => cpu[name][i].push(serverCpu(pid) - before[i]));
      await check();
      times[name].push(r.secs);
      if (r.commit) commit[name] = r.commit;
      console.error(`round ${round + 1}: ${name}: ${r.secs.toFixed(2)} s`);
    }
  }
  return {
    medians: Object.fromEntries(Object.entries(times).map(([n, xs]) => [n, median(xs)])),
    cpu: Object.fromEntries(Object.entries(cpu).map(([n, per]) => [n, per.map(median)])),
    commit,
  };
}

async function runDataio(cmd) {
  const r = await timed(...cmd);
  const s = JSON.parse(r.out.trim().split('\n').pop());
  return { secs: r.secs, commit: `${s.commit}, ${s.workers} workers${s.nodes > 1 ? ` on ${s.nodes} nodes` : ''}` };
}

async function plainServers() {
  if (!debianBinDirs().some((d) => d.includes('/15/'))) {
    console.log('PostgreSQL 15 (Debian) is not installed: the two-phase commit / staging comparison is skipped.');
    return;
  }
  const { csv, a, b } = data(ROWS);
  const [with2pc] = await startServers({ only: ['pg15-debian'] });
  const tiers = await startTiers({ want: ['pg15-default'] });
  const defaults = tiers.servers[0];
  const results = [];
  for (const [label, url] of [['max_prepared_transactions = 200', with2pc.url], ['default settings (max_prepared_transactions = 0)', defaults.url]]) {
    const fresh = async () => {
      await q(url, 'DROP TABLE IF EXISTS bench');
      await q(url, `CREATE TABLE bench (${DDL})`);
      await q(url, 'CHECKPOINT');
    };
    const check = async () => {
      const [r] = await q(url, 'SELECT count(*)::int AS n FROM bench');
      if (r.n !== ROWS) throw new Error(`expected ${ROWS} rows, found ${r.n}`);
    };
    const cases = [
      ['psql \\copy, 1 session', async () => ({ secs: (await timed(...psqlCopy(url, csv))).secs })],
      ['psql \\copy, 2 sessions on halves', async () => {
        const started = process.hrtime.bigint();
        await Promise.all([timed(...psqlCopy(url, a)), timed(...psqlCopy(url, b))]);
        return { secs: Number(process.hrtime.bigint() - started) / 1e9 };
      }],
      ['dataio (defaults)', () => runDataio(dataio(url, csv))],
    ];
    results.push([label, await rounds(cases, fresh, check)]);
  }
  console.log(`\nDefault import of ${ROWS.toLocaleString('en-US')} rows (${(statSync(csv).size / 1e6).toFixed(0)} MB CSV), Debian PostgreSQL 15, median of ${ROUNDS} alternating rounds:\n`);
  console.log('| server | way | median s | vs 2 psql sessions | vs 1 psql session | how dataio committed |');
  console.log('| --- | --- | ---: | ---: | ---: | --- |');
  for (const [label, { medians, commit }] of results) {
    const two = medians['psql \\copy, 2 sessions on halves'];
    const one = medians['psql \\copy, 1 session'];
    for (const [name, m] of Object.entries(medians)) console.log(`| ${label} | ${name} | ${m.toFixed(2)} | ${(m / two).toFixed(2)}× | ${(m / one).toFixed(2)}× | ${commit[name] ?? ''} |`);
  }
}

async function citus() {
  const tiers = await startTiers({ want: ['citus'] });
  const c = tiers.servers[0];
  if (c === undefined) {
    console.log(`\nCitus: skipped (${tiers.skipped.map((s) => s.why).join('; ')})`);
    return;
  }
  const { csv } = data(CITUS_ROWS);
  const url = c.url;
  const fresh = async () => {
    await q(url, 'DROP TABLE IF EXISTS bench');
    await q(url, `CREATE TABLE bench (${DDL})`);
    await q(url, "SELECT create_distributed_table('bench', 'id')");
  };
  const check = async () => {
    const [r] = await q(url, 'SELECT count(*)::int AS n FROM bench');
    if (r.n !== CITUS_ROWS) throw new Error(`expected ${CITUS_ROWS} rows, found ${r.n}`);
  };
  let ids = 0;
  const cases = [
    ['psql \\copy, 1 session, through the coordinator', async () => ({ secs: (await timed(...psqlCopy(url, csv))).secs })],
    ['psql \\copy, 1 session, through worker 1', async () => ({ secs: (await timed(...psqlCopy(c.workers[0], csv))).secs })],
    ['dataio (defaults)', () => runDataio(dataio(url, csv))],
    ['dataio --nodes none (coordinator only)', () => runDataio(dataio(url, csv, ['--nodes', 'none']))],
    ['dataio --import-id', () => runDataio(dataio(url, csv, ['--import-id', `bench-${process.pid}-${++ids}`]))],
  ];
  const servers = [['coordinator', await postmasterOf(url)], ...(await Promise.all(c.workers.map(async (w, i) => [`worker ${i + 1}`, await postmasterOf(w)])))];
  const { medians, cpu, commit } = await rounds(cases, fresh, check, servers);
  const one = medians['psql \\copy, 1 session, through the coordinator'];
  console.log(`\nImport of ${CITUS_ROWS.toLocaleString('en-US')} rows into a hash-distributed table (32 shards), Citus 13.2 on PostgreSQL 15: coordinator + 2 workers on this machine, median of ${ROUNDS} alternating rounds:\n`);
  console.log('| way | median s | vs 1 psql session | how dataio committed |');
  console.log('| --- | ---: | ---: | --- |');
  for (const [name, m] of Object.entries(medians)) console.log(`| ${name} | ${m.toFixed(2)} | ${(m / one).toFixed(2)}× | ${commit[name] ?? ''} |`);
  // Where the servers' work went: on separate machines each node's share is what it must do alone.
  console.log(`\nCPU seconds each node's PostgreSQL used for the same imports (medians; dataio's and psql's own CPU not included):\n`);
  console.log(`| way | ${servers.map(([l]) => l).join(' | ')} | all nodes | busiest node's share |`);
  console.log(`| --- | ${servers.map(() => '---:').join(' | ')} | ---: | ---: |`);
  for (const [name, per] of Object.entries(cpu)) {
    const all = per.reduce((x, y) => x + y, 0);
    console.log(`| ${name} | ${per.map((x) => x.toFixed(2)).join(' | ')} | ${all.toFixed(2)} | ${((Math.max(...per) / all) * 100).toFixed(0)} % |`);
  }
}

try {
  await plainServers();
  await citus();
} finally {
  await stopAll();
}
console.log(`\nCommand: ROWS=${ROWS} CITUS_ROWS=${CITUS_ROWS} ROUNDS=${ROUNDS} node bench/field.mjs (npm run bench -- field); ${new Date().toISOString().slice(0, 10)}, Node ${process.version}.`);
