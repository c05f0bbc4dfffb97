// Real PostgreSQL servers for the test suite and the benchmarks: the embedded PostgreSQL 18 (through
// dataio's own embedded manager, in a throw-away DATAIO_HOME) and every Debian PostgreSQL installed
// under /usr/lib/postgresql/*/bin (run as the `postgres` OS user when we are root, in a temporary
// data directory, on a free loopback port).
// Tiers (startTiers): extra servers that only the tests asking for them use — a Debian PostgreSQL 15
// with default settings that also speaks TLS, PgBouncer in front of it, a Citus cluster — each started
// only when its software is installed.
// Whatever is started is tracked from its first file on: stopAll() stops all of it (on ^C too).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { accessSync, chmodSync, chownSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

// How to stop each thing started and not stopped yet.
const live = new Set();
// Set by stopAll: nothing more may start (a start still under way when ^C came must not outlive it).
let closing = false;

/** Register how to stop something being started; the function returned stops it once (later calls share that). */
function track(stopFn) {
  if (closing) {
    stopFn().catch(() => undefined);
    throw new Error('the test servers are being stopped: not starting another');
  }
  let done;
  const stop = () =>
    (done ??= (async () => {
      try {
        await stopFn();
      } finally {
        live.delete(stop);
      }
    })());
  live.add(stop);
  return stop;
}

/** Stop everything this module started and has not stopped yet, side by side (each is independent). */
export async function stopAll() {
  closing = true;
  await Promise.all(
    [...live].map((stop) =>
      stop().catch((err) => {
        console.error(`could not stop a test server: ${err.message}`);
      }),
    ),
  );
}

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
  const stop = track(async () => {
    try {
      await stopEmbedded(home);
    } catch {
      // Its pg_ctl runs in our process group: a ^C at the terminal may have ended it. Once more.
      await stopEmbedded(home);
    }
    rmSync(home, { recursive: true, force: true });
  });
  const r = await ensureEmbedded(home);
  const c = r.connection;
  const url = `postgresql://${c.user}:${encodeURIComponent(c.password)}@${c.host}:${c.port}/${c.database}`;
  return {
    name: 'pg18-embedded',
    url,
    home,
    stop,
  };
}

const INITDB_ARGS = ['-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-instructions'];

async function startDebian(binDir) {
  const version = binDir.split('/').at(-2);
  const ids = postgresIds();
  const base = mkdtempSync(join(tmpdir(), `dataio-test-pg${version}-`));
  chmodSync(base, 0o755);
  const data = join(base, 'data');
  if (ids.uid !== undefined) chownSync(base, ids.uid, ids.gid);
  const stop = track(async () => {
    try {
      await stopPostgres(binDir, data, ids);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
  run(join(binDir, 'initdb'), ['-D', data, ...INITDB_ARGS], ids);
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
    stop,
  };
}

/**
 * Stop the server of data directory `data` if one runs there. pg_ctl runs detached, so that a ^C at the
 * terminal does not end the stop itself; a ^C that came as it was being spawned (before it left our
 * process group) can still end it, so a stop that failed while the server lives is tried once more.
 * A postmaster.pid whose process is gone (initdb's bootstrap backend, interrupted) is no server to stop.
 */
async function stopPostgres(binDir, data, ids) {
  const pidFile = join(data, 'postmaster.pid');
  const running = () => {
    try {
      const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
      return pid > 0 && processAlive(pid);
    } catch {
      return false; // no postmaster.pid
    }
  };
  const pgCtlStop = () => runAsync(join(binDir, 'pg_ctl'), ['stop', '-D', data, '-m', 'fast', '-w', '-s'], { ids, detached: true });
  if (!existsSync(pidFile)) return;
  try {
    await pgCtlStop();
  } catch (err) {
    if (!running()) return;
    try {
      await pgCtlStop();
    } catch {
      if (running()) throw err;
    }
  }
}

function processAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM'; // the postgres user's, when we are not root
  }
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

// ---- Tiers ---------------------------------------------------------------------------------------

export const TIERS = ['pg15-default', 'pgbouncer-transaction', 'pgbouncer-session', 'citus', 'tls'];

const PG15 = '/usr/lib/postgresql/15';

/** Run a command without blocking the event loop (tiers start side by side); resolves to its stdout. */
function runAsync(cmd, args, { ids = {}, cwd = '/', detached = false, started } = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { ...ids, cwd, detached, env: { ...cleanEnv(), LC_ALL: 'C' }, stdio: ['ignore', 'pipe', 'pipe'] });
    started?.(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolvePromise(out);
      else reject(new Error(`${cmd} ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${(err || out).trim()}`));
    });
  });
}

/** A command on PATH (or in /usr/sbin, /sbin: root's PATH has them, a user's may not), or undefined. */
function findCommand(name) {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin']) {
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      if (statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** `n` consecutive ports free on 127.0.0.1 (held while checked, then released); the first one. */
async function freePorts(n) {
  const hold = (port) =>
    new Promise((res) => {
      const srv = createServer();
      srv.once('error', () => res(undefined));
      srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => res(srv));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    const first = await freePort();
    if (first + n - 1 > 65535) continue;
    const held = [];
    for (let i = 1; i < n; i++) held.push(await hold(first + i));
    await Promise.all(held.filter(Boolean).map((s) => new Promise((r) => s.close(r))));
    if (held.every(Boolean)) return first;
  }
  throw new Error(`found no ${n} consecutive free ports on 127.0.0.1`);
}

function canConnect(port) {
  return new Promise((res) => {
    const sock = connect({ port, host: '127.0.0.1' });
    sock.once('connect', () => {
      sock.destroy();
      res(true);
    });
    sock.once('error', () => res(false));
  });
}

async function waitForPort(port, what, ms = 15000) {
  const until = Date.now() + ms;
  while (!(await canConnect(port))) {
    if (Date.now() > until) throw new Error(`${what} did not listen on 127.0.0.1:${port} within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A directory for one tier, reachable by the postgres OS user (owned by it when we are root). */
function tierDir(prefix, ids) {
  const dir = mkdtempSync(join(tmpdir(), `dataio-tier-${prefix}-`));
  chmodSync(dir, 0o755);
  if (ids.uid !== undefined) chownSync(dir, ids.uid, ids.gid);
  return dir;
}

/**
 * A throw-away CA, a server certificate it signs for 127.0.0.1 and localhost, and a second, unrelated
 * CA (a client trusting only that one must refuse the server). The CA's key is deleted once it has signed.
 */
async function makeCertificates(dir, ids) {
  mkdirSync(dir, { mode: 0o755 });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = (name, cn) => runAsync('openssl', ['req', '-x509', ...ec, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '7', '-subj', `/CN=${cn}`], { cwd: dir });
  writeFileSync(
    join(dir, 'server.ext'),
    'subjectAltName = IP:127.0.0.1, DNS:localhost\nbasicConstraints = CA:FALSE\nkeyUsage = digitalSignature, keyEncipherment\nextendedKeyUsage = serverAuth\n',
  );
  await Promise.all([
    ca('ca', 'dataio test CA'),
    ca('wrong-ca', 'dataio unrelated test CA'),
    runAsync('openssl', ['req', '-new', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'], { cwd: dir }),
  ]);
  await runAsync('openssl', ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '7', '-extfile', 'server.ext'], { cwd: dir });
  for (const f of ['ca.key', 'wrong-ca.key', 'server.csr', 'server.ext', 'ca.srl']) rmSync(join(dir, f), { force: true });
  for (const f of ['ca.crt', 'wrong-ca.crt', 'server.crt']) chmodSync(join(dir, f), 0o644);
  chmodSync(join(dir, 'server.key'), 0o600);
  if (ids.uid !== undefined) for (const f of ['server.key', 'server.crt']) chownSync(join(dir, f), ids.uid, ids.gid);
  return { caFile: join(dir, 'ca.crt'), wrongCaFile: join(dir, 'wrong-ca.crt'), cert: join(dir, 'server.crt'), key: join(dir, 'server.key') };
}

/**
 * Debian's PostgreSQL 15 with PostgreSQL's default settings (max_prepared_transactions = 0, as on
 * Debian and managed services): only where it listens is set, and TLS when `tls` (both TLS and plain
 * connections are accepted: initdb's pg_hba `host` lines match either).
 */
async function startPg15Default({ tls }) {
  const bin = join(PG15, 'bin');
  const ids = postgresIds();
  const base = tierDir('pg15-default', ids);
  const data = join(base, 'data');
  const stop = track(async () => {
    await stopPostgres(bin, data, ids); // the directory stays when a server there could not be stopped
    rmSync(base, { recursive: true, force: true });
  });
  const [certs] = await Promise.all([
    tls ? makeCertificates(join(base, 'tls'), ids) : undefined,
    runAsync(join(bin, 'initdb'), ['-D', data, ...INITDB_ARGS], { ids }),
  ]);
  const port = await freePort();
  const conf = [`port = ${port}`, "listen_addresses = '127.0.0.1'", "unix_socket_directories = ''"];
  if (certs) conf.push('ssl = on', `ssl_cert_file = '${certs.cert}'`, `ssl_key_file = '${certs.key}'`);
  writeFileSync(join(data, 'postgresql.conf'), `\n${conf.join('\n')}\n`, { flag: 'a' });
  await runAsync(join(bin, 'pg_ctl'), ['start', '-D', data, '-l', join(base, 'server.log'), '-w', '-t', '60', '-s'], { ids });
  return { port, url: `postgresql://postgres@127.0.0.1:${port}/postgres`, certs, stop };
}

/**
 * One PgBouncer in front of the server on `backendPort` (trust auth, user postgres), with two
 * databases: postgres_transaction (pool_mode = transaction) and postgres_session (pool_mode = session),
 * both the server's database postgres. Small pools, so that clients really share server connections.
 * ignore_startup_parameters stays at its default (empty): node-postgres sends user, database,
 * client_encoding and application_name, all of which PgBouncer 1.18 handles itself; a client that
 * also sent options, statement_timeout, lock_timeout… would be refused here as on a default PgBouncer.
 */
async function startPgbouncer(binary, backendPort) {
  const ids = postgresIds();
  const dir = tierDir('pgbouncer', ids);
  const pidfile = join(dir, 'pgbouncer.pid');
  const stop = track(async () => {
    try {
      const pid = existsSync(pidfile) ? Number(readFileSync(pidfile, 'utf8').trim()) : NaN;
      if (pid > 0) await killAndWait(pid);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  const port = await freePort();
  const db = (mode) => `postgres_${mode} = host=127.0.0.1 port=${backendPort} dbname=postgres pool_mode=${mode}`;
  const ini = [
    '[databases]',
    db('transaction'),
    db('session'),
    '',
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    'unix_socket_dir =',
    'auth_type = trust',
    `auth_file = ${join(dir, 'userlist.txt')}`,
    'admin_users = postgres',
    `pidfile = ${pidfile}`,
    `logfile = ${join(dir, 'pgbouncer.log')}`,
    'default_pool_size = 10',
    'max_client_conn = 500',
  ].join('\n');
  writeFileSync(join(dir, 'pgbouncer.ini'), `${ini}\n`);
  writeFileSync(join(dir, 'userlist.txt'), '"postgres" ""\n');
  await runAsync(binary, ['-d', join(dir, 'pgbouncer.ini')], { ids });
  await waitForPort(port, 'pgbouncer');
  const url = (mode) => `postgresql://postgres@127.0.0.1:${port}/postgres_${mode}`;
  return { transactionUrl: url('transaction'), sessionUrl: url('session'), stop };
}

async function killAndWait(pid, ms = 10000) {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const until = Date.now() + ms;
  while (processAlive(pid)) {
    if (Date.now() > until) {
      process.kill(pid, 'SIGKILL');
      return;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The shared Citus scripts: beside the repository (as CI lays shared/ out), then /work/shared, then $DATAIO_CITUS_BUILD's directory. */
export function citusScript(name) {
  const dirs = [resolve(root, '../shared/citus'), '/work/shared/citus'];
  if (process.env.DATAIO_CITUS_BUILD) dirs.push(dirname(process.env.DATAIO_CITUS_BUILD));
  return dirs.map((d) => join(d, name)).find((p) => existsSync(p));
}

/** A Citus coordinator and two workers (cluster.sh, PostgreSQL 15) on three consecutive free ports. */
async function startCitus(clusterSh) {
  const base = mkdtempSync(join(tmpdir(), 'dataio-tier-citus-')); // cluster.sh gives it to the postgres user
  const port = await freePorts(3);
  let starting;
  const stop = track(async () => {
    // Interrupted while starting: end cluster.sh (its own process group) before stopping what it started.
    if (starting && starting.exitCode === null && starting.signalCode === null) {
      const ended = new Promise((r) => starting.once('close', r));
      try {
        process.kill(-starting.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      await ended;
    }
    // cluster.sh stop needs the base port too: without it, it looks for the nodes of port 9700. Detached,
    // so that a ^C at the terminal does not end it (once more if one did as it was spawned, as in
    // stopPostgres); the directory stays when the stop fails.
    const clusterStop = () => runAsync('bash', [clusterSh, 'stop', base, String(port)], { detached: true });
    await clusterStop().catch(clusterStop);
    rmSync(base, { recursive: true, force: true });
  });
  const out = await runAsync('bash', [clusterSh, 'start', base, String(port)], { detached: true, started: (c) => (starting = c) });
  const urls = out.split('\n').filter((l) => l.startsWith('postgresql://'));
  if (urls.length !== 3) throw new Error(`cluster.sh start printed ${urls.length} URLs, not 3: ${out.trim()}`);
  return { url: urls[0], workers: urls.slice(1), stop };
}

/**
 * Start the tiers named in `want` whose software is installed. Resolves to { servers, skipped }:
 * servers as tests see them (name, url, tier, and directUrl / workers / caFile, wrongCaFile), skipped
 * as { tier, why } for each wanted tier that could not run here. Stop them with stopAll().
 */
export async function startTiers({ want = TIERS } = {}) {
  const wanted = new Set(want);
  const servers = [];
  const skipped = [];
  const skip = (tier, why) => wanted.has(tier) && skipped.push({ tier, why });

  // Citus first: its three servers take longest, and start while the rest is set up.
  let citus;
  if (wanted.has('citus')) {
    const so = join(PG15, 'lib/citus.so');
    const clusterSh = citusScript('cluster.sh');
    const psql = findCommand('psql');
    if (!existsSync(so)) skip('citus', `citus.so not installed, no ${so} (shared/citus/build.sh builds it)`);
    else if (!clusterSh) skip('citus', 'cluster.sh not found (../shared/citus, /work/shared/citus, $DATAIO_CITUS_BUILD)');
    else if (!psql) skip('citus', 'psql not installed (cluster.sh needs it)');
    else citus = startCitus(clusterSh);
  }
  citus?.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile

  const pg15Installed = existsSync(join(PG15, 'bin/postgres')) && existsSync(join(PG15, 'bin/initdb'));
  const pgbouncerBin = findCommand('pgbouncer');
  const openssl = findCommand('openssl');
  const wantBouncer = wanted.has('pgbouncer-transaction') || wanted.has('pgbouncer-session');
  const needPg15 = wanted.has('pg15-default') || wanted.has('tls') || (wantBouncer && pgbouncerBin);
  let pg15;
  if (!pg15Installed) {
    skip('pg15-default', `PostgreSQL 15 not installed, no ${PG15}/bin/postgres`);
    skip('tls', 'runs on the pg15-default server: PostgreSQL 15 not installed');
  } else if (needPg15) {
    if (wanted.has('tls') && !openssl) skip('tls', 'openssl not installed');
    pg15 = await startPg15Default({ tls: Boolean(openssl) });
    if (wanted.has('pg15-default')) servers.push({ name: 'pg15-default', url: pg15.url, tier: 'pg15-default' });
    if (wanted.has('tls') && pg15.certs) {
      const { caFile, wrongCaFile } = pg15.certs;
      const url = `${pg15.url}?sslmode=verify-full&sslrootcert=${encodeURIComponent(caFile)}`;
      servers.push({ name: 'tls', url, tier: 'tls', caFile, wrongCaFile });
    }
  }

  if (wantBouncer) {
    const why = !pgbouncerBin ? 'pgbouncer not installed' : !pg15 ? 'runs in front of the pg15-default server: PostgreSQL 15 not installed' : undefined;
    if (why) {
      skip('pgbouncer-transaction', why);
      skip('pgbouncer-session', why);
    } else {
      const b = await startPgbouncer(pgbouncerBin, pg15.port);
      if (wanted.has('pgbouncer-transaction')) servers.push({ name: 'pgbouncer-transaction', url: b.transactionUrl, tier: 'pgbouncer-transaction', directUrl: pg15.url });
      if (wanted.has('pgbouncer-session')) servers.push({ name: 'pgbouncer-session', url: b.sessionUrl, tier: 'pgbouncer-session', directUrl: pg15.url });
    }
  }

  if (citus) {
    const c = await citus;
    servers.push({ name: 'citus', url: c.url, tier: 'citus', workers: c.workers });
  }
  servers.sort((a, b) => TIERS.indexOf(a.tier) - TIERS.indexOf(b.tier));
  skipped.sort((a, b) => TIERS.indexOf(a.tier) - TIERS.indexOf(b.tier));
  return { servers, skipped };
}
