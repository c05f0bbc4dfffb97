// `npm run bench -- merge`: the cron-job imports, beside psql in the same run, alternating, medians:
//  - upsert: a DELTA-row delta (half of its keys in the table already) onto a BASE-row table with a
//    primary key: dataio --on-conflict update against psql's best one-session way (a temporary table,
//    \copy, INSERT … SELECT … ORDER BY key ON CONFLICT … DO UPDATE);
//  - many files: FILES files of FILE_ROWS rows as one dataio import of their directory (also resumable,
//    --import-id), against one psql session running FILES \copy commands from a script;
//  - a small file: one FILE_ROWS-row file, dataio against psql -c '\copy …', whole processes, SMALL_ROUNDS
//    rounds (the median of the rounds' ratios), with the floor beside them: a minimal Node client
//    (bench/floor-client.cjs: pg and pg-copy-streams only, bundled here with esbuild as dataio is).
// Embedded PostgreSQL 18. Env: BASE (2000000), DELTA (2000000), FILES (300), FILE_ROWS (1000), ROUNDS (3), SMALL_ROUNDS (20).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import pg from 'pg';
import { startServers, stopAll } from '../scripts/pg-servers.mjs';
import { timed } from './timed.mjs';

const root = new URL('..', import.meta.url).pathname;
const BASE = Number(process.env.BASE ?? 2_000_000);
const DELTA = Number(process.env.DELTA ?? 2_000_000);
const FILES = Number(process.env.FILES ?? 300);
const FILE_ROWS = Number(process.env.FILE_ROWS ?? 1000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const SMALL_ROUNDS = Number(process.env.SMALL_ROUNDS ?? 20);
const dataDir = join(root, 'bench/data');
mkdirSync(dataDir, { recursive: true });
const DDL = 'id bigint, name text, category text, value double precision, created_at timestamptz, description text';
const COLS = ['name', 'category', 'value', 'created_at', 'description'];

function median(xs) {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
}

function generated(rows) {
  const csv = join(dataDir, `bench-${rows}.csv`);
  if (!existsSync(csv)) execFileSync(process.execPath, [join(root, 'bench/gen-csv.mjs'), String(rows), csv, 'csv'], { stdio: 'inherit' });
  return csv;
}

const [server] = await startServers({ only: ['pg18-embedded'] });
const url = server.url;
const client = new pg.Client({ connectionString: url });
await client.connect();
const q = (sql) => client.query(sql);
const psql = (...args) => ['psql', [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', ...args]];
const { NODE_EXTRA_CA_CERTS: _extraCa, ...withoutExtraCa } = process.env;
const dataio = (...args) => [join(root, 'bin/dataio'), ['import', ...args, '--table', 'bench', '--db', url, '--progress', 'none']];

/**
 * Alternating rounds of the cases (the first is psql); each case's time and its ratio to psql's in the
 * same round. A case's command may be a function of the round (an import id of its own each time).
 */
async function rounds(n, cases, fresh) {
  const times = Object.fromEntries(cases.map(([name]) => [name, []]));
  const ratios = Object.fromEntries(cases.map(([name]) => [name, []]));
  for (let round = 0; round < n; round++) {
    const got = {};
    for (const [name, cmd] of round % 2 === 0 ? cases : [...cases].reverse()) {
      await fresh();
      got[name] = (await timed(...(typeof cmd === 'function' ? cmd(round) : cmd))).secs;
      times[name].push(got[name]);
    }
    for (const [name] of cases) ratios[name].push(got[name] / got[cases[0][0]]);
    console.error(`round ${round + 1}: ${cases.map(([name]) => `${name} ${got[name].toFixed(3)} s`).join(', ')}`);
  }
  const medians = (m) => Object.fromEntries(Object.entries(m).map(([k, xs]) => [k, median(xs)]));
  return { medians: medians(times), ratios: medians(ratios) };
}

function table(title, r) {
  console.log(`\n${title}\n`);
  console.log('| way | median s | vs psql |');
  console.log('| --- | ---: | ---: |');
  const [psqlName] = Object.keys(r.medians);
  for (const [name, m] of Object.entries(r.medians)) console.log(`| ${name} | ${m.toFixed(3)} | ${name === psqlName ? '1.00×' : `${(m / r.medians[psqlName]).toFixed(2)}× (median of the rounds' ratios ${r.ratios[name].toFixed(2)}×)`} |`);
}

try {
  // Upsert.
  const base = generated(BASE);
  const delta = join(dataDir, `delta-${DELTA}-from-${BASE / 2}.csv`);
  if (!existsSync(delta)) {
    // Keys BASE/2+1 … BASE/2+DELTA: the first half of them are in the table. Only the first field changes.
    execFileSync('sh', ['-c', `awk -F, -v OFS=, 'NR == 1 { print; next } { $1 = $1 + ${BASE / 2}; print }' '${generated(DELTA)}' > '${delta}'`]);
  }
  await q('DROP TABLE IF EXISTS bench_base');
  await q(`CREATE TABLE bench_base (${DDL})`);
  await q(`COPY bench_base FROM '${base}' (FORMAT csv, HEADER)`);
  const upsertSql = join(dataDir, 'upsert.psql');
  writeFileSync(
    upsertSql,
    `CREATE TEMP TABLE d (LIKE bench);\n\\copy d from '${delta}' with (format csv, header true)\n` +
      `INSERT INTO bench SELECT * FROM d ORDER BY id ON CONFLICT (id) DO UPDATE SET ${COLS.map((c) => `${c} = excluded.${c}`).join(', ')};\n`,
  );
  const freshBase = async () => {
    await q('DROP TABLE IF EXISTS bench');
    await q(`CREATE TABLE bench (${DDL})`);
    await q('INSERT INTO bench SELECT * FROM bench_base');
    await q('ALTER TABLE bench ADD PRIMARY KEY (id)');
    await q('VACUUM ANALYZE bench');
    await q('CHECKPOINT');
  };
  const upsert = await rounds(ROUNDS, [
    ['psql: temp table, \\copy, INSERT … ORDER BY id ON CONFLICT DO UPDATE', psql('-f', upsertSql)],
    ['dataio --on-conflict update', dataio(delta, '--on-conflict', 'update')],
  ], freshBase);
  const [n] = (await q('SELECT count(*)::int AS n FROM bench')).rows;
  if (n.n !== BASE / 2 + DELTA) throw new Error(`upsert: expected ${BASE / 2 + DELTA} rows, found ${n.n}`);
  table(`Upsert of ${DELTA.toLocaleString('en-US')} rows (half of the keys in the table) onto ${BASE.toLocaleString('en-US')} rows with a primary key, median of ${ROUNDS} alternating rounds:`, upsert);

  // Many files.
  const dir = join(dataDir, `files-${FILES}x${FILE_ROWS}`);
  const made = join(dataDir, `files-${FILES}x${FILE_ROWS}.ok`);
  if (!existsSync(made)) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    const lines = readFileSync(generated(FILES * FILE_ROWS), 'utf8').split('\n');
    const header = lines[0];
    for (let f = 0; f < FILES; f++) {
      writeFileSync(join(dir, `part-${String(f).padStart(4, '0')}.csv`), [header, ...lines.slice(1 + f * FILE_ROWS, 1 + (f + 1) * FILE_ROWS)].join('\n') + '\n');
    }
    writeFileSync(made, '');
  }
  const script = join(dataDir, `files-${FILES}x${FILE_ROWS}.psql`);
  writeFileSync(script, Array.from({ length: FILES }, (_, f) => `\\copy bench from '${join(dir, `part-${String(f).padStart(4, '0')}.csv`)}' with (format csv, header true)`).join('\n') + '\n');
  const fresh = async () => {
    await q('DROP TABLE IF EXISTS bench');
    await q(`CREATE TABLE bench (${DDL})`);
    await q('CHECKPOINT');
  };
  const files = await rounds(ROUNDS, [
    [`psql: one session, ${FILES} \\copy commands`, psql('-f', script)],
    ['dataio: the directory as one import', dataio(dir)],
    ['dataio: the same with --import-id', (round) => dataio(dir, '--import-id', `bench-files-${Date.now()}-${round}`)],
  ], fresh);
  table(`${FILES} files of ${FILE_ROWS.toLocaleString('en-US')} rows, median of ${ROUNDS} alternating rounds:`, files);

  // A small file: the fixed cost of a whole process, and the floor a Node client has here.
  const small = join(dir, 'part-0000.csv');
  const floor = join(dataDir, 'floor-client.bundle.cjs');
  await build({ entryPoints: [join(root, 'bench/floor-client.cjs')], outfile: floor, bundle: true, platform: 'node', format: 'cjs', target: 'node20', external: ['pg-native'], logLevel: 'warning' });
  const one = await rounds(SMALL_ROUNDS, [
    [`psql -c '\\copy …', ${FILE_ROWS} rows`, psql('-c', `\\copy bench from '${small}' with (format csv, header true)`)],
    [`dataio import, ${FILE_ROWS} rows`, dataio(small)],
    // Without NODE_EXTRA_CA_CERTS, which Node would read as it starts (and bin/dataio keeps it from).
    ['a minimal Node client (pg, pg-copy-streams; BEGIN, COPY, COMMIT): the floor', [process.execPath, [floor, url, small, 'bench'], { env: withoutExtraCa }]],
  ], async () => q('TRUNCATE bench'));
  table(`One file of ${FILE_ROWS.toLocaleString('en-US')} rows, whole processes, median of ${SMALL_ROUNDS} alternating rounds:`, one);
} finally {
  await client.end();
  await stopAll();
}
console.log(`\nCommand: BASE=${BASE} DELTA=${DELTA} FILES=${FILES} FILE_ROWS=${FILE_ROWS} ROUNDS=${ROUNDS} SMALL_ROUNDS=${SMALL_ROUNDS} node bench/merge.mjs (npm run bench -- merge); ${new Date().toISOString().slice(0, 10)}, Node ${process.version}.`);
