// `npm run bench -- footprint` (not in the default run: it writes about 4 GB of data): what does not
// show in the speed tables.
//  - Peak RSS of dataio import (defaults) as the input grows: CSV 2M and 20M rows; a JSON array piped
//    through stdin at about 20 MB, 200 MB and 2 GB. Memory must stop growing with the input.
//  - Start-up: a one-row import by dataio and by psql \copy, alternating, and `node -e 0` (the floor any
//    Node program pays here), medians of ROUNDS.
// Env: ROUNDS (default 5). Data goes to bench/data/ (never committed).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { startServers, stopServers } from '../scripts/pg-servers.mjs';
import { timed } from './timed.mjs';

const root = new URL('..', import.meta.url).pathname;
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const dataDir = join(root, 'bench/data');
mkdirSync(dataDir, { recursive: true });
const DDL = 'id bigint, name text, category text, value double precision, created_at timestamptz, description text';

function data(rows, format) {
  const file = join(dataDir, `bench-${rows}.${format}`);
  if (!existsSync(file)) {
    console.error(`generating ${rows} rows into ${file}`);
    execFileSync(process.execPath, [join(root, 'bench/gen-csv.mjs'), String(rows), file, format], { stdio: 'inherit' });
  }
  return file;
}

/** Timed, with stdin from a file when given (through sh, so that the child reads the file itself). */
function run(cmd, args, stdinFile, env = process.env) {
  return timed('sh', ['-c', stdinFile ? `"$0" "$@" < '${stdinFile}'` : '"$0" "$@"', cmd, ...args], { env });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const servers = await startServers({ only: ['pg18-embedded'] });
const server = servers[0];
const client = new pg.Client({ connectionString: server.url });
await client.connect();
const dataio = (args, stdinFile, env) => run(join(root, 'bin/dataio'), ['import', ...args, '--table', 'fp', '--db', server.url, '--progress', 'none', '--json'], stdinFile, env);
const fresh = async () => {
  await client.query('DROP TABLE IF EXISTS fp');
  await client.query(`CREATE TABLE fp (${DDL})`);
};

try {
  console.log('Peak RSS of dataio import with the defaults, embedded PostgreSQL 18:\n');
  console.log('| input | size MB | rows | peak RSS MB |');
  console.log('| --- | ---: | ---: | ---: |');
  const cases = [
    ['CSV file', 2_000_000, 'csv', false],
    ['CSV file', 20_000_000, 'csv', false],
    ['JSON array, stdin', 140_000, 'json', true],
    ['JSON array, stdin', 1_400_000, 'json', true],
    ['JSON array, stdin', 14_000_000, 'json', true],
  ];
  for (const [label, rows, format, piped] of cases) {
    const file = data(rows, format);
    await fresh();
    const r = piped ? await dataio(['-', '--format', format], file) : await dataio([file]);
    const s = JSON.parse(r.out.trim().split('\n').pop());
    if (s.rows !== rows) throw new Error(`expected ${rows} rows, loaded ${s.rows}`);
    const { size } = await import('node:fs').then((fs) => fs.statSync(file));
    console.log(`| ${label} | ${(size / 1e6).toFixed(0)} | ${rows.toLocaleString('en-US')} | ${s.peakRssMB} |`);
  }

  const tiny = join(dataDir, 'footprint-one-row.csv');
  writeFileSync(tiny, 'id,name,category,value,created_at,description\n1,a,b,1.5,2024-01-01T00:00:00Z,c\n');
  const times = { 'psql \\copy, one row': [], 'dataio import, one row': [], 'node -e 0': [] };
  // Node 20 reads NODE_EXTRA_CA_CERTS (and builds its whole root store) at every start-up.
  const noCa = { ...process.env, NODE_EXTRA_CA_CERTS: '' };
  if (process.env.NODE_EXTRA_CA_CERTS) Object.assign(times, { 'dataio import, one row, NODE_EXTRA_CA_CERTS unset': [], 'node -e 0, NODE_EXTRA_CA_CERTS unset': [] });
  for (let round = 0; round < ROUNDS; round++) {
    await fresh();
    times['psql \\copy, one row'].push((await run('psql', [server.url, '-X', '-q', '-c', `\\copy fp from '${tiny}' with (format csv, header true)`])).secs);
    times['dataio import, one row'].push((await dataio([tiny])).secs);
    times['node -e 0'].push((await run(process.execPath, ['-e', '0'])).secs);
    if (process.env.NODE_EXTRA_CA_CERTS) {
      await fresh();
      times['dataio import, one row, NODE_EXTRA_CA_CERTS unset'].push((await dataio([tiny], undefined, noCa)).secs);
      times['node -e 0, NODE_EXTRA_CA_CERTS unset'].push((await run(process.execPath, ['-e', '0'], undefined, noCa)).secs);
    }
  }
  console.log(`\nStart-up, median of ${ROUNDS} alternating rounds:\n`);
  console.log('| what | median s |');
  console.log('| --- | ---: |');
  for (const [name, xs] of Object.entries(times)) console.log(`| ${name} | ${median(xs).toFixed(3)} |`);
  console.log(`\nCommand: node bench/footprint.mjs (npm run bench -- footprint); ${new Date().toISOString().slice(0, 10)}, Node ${process.version}.`);
} finally {
  await client.end();
  await stopServers(servers);
}
