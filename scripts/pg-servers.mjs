// Real PostgreSQL servers for the test suite and the benchmarks: the embedded PostgreSQL 18 (through
// dataio's own embedded manager, in a throw-away DATAIO_HOME) and every Debian PostgreSQL installed
// under /usr/lib/postgresql/*/bin (run as the `postgres` OS user when we are root, in a temporary
// data directory, on a free loopback port).
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen({ port: 0, host: '127.0.0.1' }, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function postgresIds() {
  if (process.getuid?.() !== 0) return {};
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
  return { uid, gid };
}

function run(cmd, args, ids) {
  const r = spawnSync(cmd, args, { ...ids, cwd: '/', encoding: 'utf8', env: { ...cleanEnv(), LC_ALL: 'C' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.stdout}`);
  return r.stdout;
}

function cleanEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG')) env[k] = v;
  return env;
}

async function startEmbedded() {
  const { ensureEmbedded, stopEmbedded } = await import(join(root, 'dist/src/pg/embedded.js'));
  const home = mkdtempSync(join(tmpdir(), 'dataio-test-home-'));
  chmodSync(home, 0o755);
  const r = await ensureEmbedded(home);
  const c = r.connection;
  const url = `postgresql://${c.user}:${encodeURIComponent(c.password)}@${c.host}:${c.port}/${c.database}`;
  return {
    name: 'pg18-embedded',
    url,
    home,
    stop: async () => {
      await stopEmbedded(home);
      rmSync(home, { recursive: true, force: true });
    },
  };
}

async function startDebian(binDir) {
  const version = binDir.split('/').at(-2);
  const ids = postgresIds();
  const base = mkdtempSync(join(tmpdir(), `dataio-test-pg${version}-`));
  chmodSync(base, 0o755);
  const data = join(base, 'data');
  if (ids.uid !== undefined) chownSync(base, ids.uid, ids.gid);
  run(join(binDir, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-instructions'], ids);
  const port = await freePort();
  const conf = [
    `port = ${port}`,
    "listen_addresses = '127.0.0.1'",
    "unix_socket_directories = ''",
    'max_connections = 200',
    'max_prepared_transactions = 200',
    'fsync = on',
  ].join('\n');
  writeFileSync(join(data, 'postgresql.conf'), `\n${conf}\n`, { flag: 'a' });
  run(join(binDir, 'pg_ctl'), ['start', '-D', data, '-l', join(base, 'server.log'), '-w', '-t', '60', '-s'], ids);
  return {
    name: `pg${version}-debian`,
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    stop: async () => {
      try {
        run(join(binDir, 'pg_ctl'), ['stop', '-D', data, '-m', 'fast', '-w', '-s'], ids);
      } finally {
        rmSync(base, { recursive: true, force: true });
      }
    },
  };
}

export function debianBinDirs() {
  const top = '/usr/lib/postgresql';
  if (!existsSync(top)) return [];
  return readdirSync(top)
    .map((v) => join(top, v, 'bin'))
    .filter((d) => existsSync(join(d, 'postgres')) && existsSync(join(d, 'initdb')));
}

/** Start every server available; `only` limits to names containing one of its strings. */
export async function startServers({ only } = {}) {
  const servers = [];
  const want = (name) => !only || only.some((o) => name.includes(o));
  try {
    if (want('pg18-embedded')) servers.push(await startEmbedded());
    for (const dir of debianBinDirs()) {
      const name = `pg${dir.split('/').at(-2)}-debian`;
      if (want(name)) servers.push(await startDebian(dir));
    }
  } catch (err) {
    await stopServers(servers);
    throw err;
  }
  return servers;
}

export async function stopServers(servers) {
  for (const s of servers) {
    try {
      await s.stop();
    } catch (err) {
      console.error(`could not stop ${s.name}: ${err.message}`);
    }
  }
}
