/**
 * Turning a Config into connected pg clients. The embedded server is started here, lazily, the first
 * time a command needs a connection.
 */
import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { Config } from '../config.js';
import { DataioError } from '../errors.js';
import { isPgError, mapConnectError } from './pg-errors.js';
import { isTransientSqlstate, withRetry } from './retry.js';
import { applyDeferredExtraCa } from './extra-ca.js';

export interface ConnectionTarget {
  /** What pg.Client takes. */
  clientConfig: pg.ClientConfig;
  /** Where we connect, for messages: never contains a password. */
  display: string;
  /** The server runs on this machine (loopback or a Unix socket), so it shares our CPU cores. */
  local?: boolean;
}

/** A host that is this machine: loopback, a Unix-socket directory, or libpq's default (none). */
export function isLocalHost(host: string | undefined): boolean {
  if (host === undefined || host === '') return true;
  const h = host.replace(/^\[|\]$/g, '');
  return h.startsWith('/') || h === 'localhost' || h === '::1' || /^127\./.test(h);
}

export interface Notices {
  note(message: string): void;
}

/** Parse the pgpass format (libpq): host:port:database:user:password, `*` wildcards, `\:` escapes. */
export function pgpassLookup(text: string, host: string, port: string, database: string, user: string): string | undefined {
  for (const raw of text.split(/\r?\n/)) {
    if (raw === '' || raw.startsWith('#')) continue;
    const fields: string[] = [];
    let cur = '';
    for (let i = 0; i < raw.length; i++) {
      const ch = raw[i];
      if (ch === '\\' && i + 1 < raw.length) cur += raw[++i];
      else if (ch === ':' && fields.length < 4) {
        fields.push(cur);
        cur = '';
      } else cur += ch;
    }
    fields.push(cur);
    if (fields.length !== 5) continue;
    const [h, p, d, u, pw] = fields as [string, string, string, string, string];
    const match = (pattern: string, value: string) => pattern === '*' || pattern === value;
    if (match(h, host) && match(p, port) && match(d, database) && match(u, user)) return pw;
  }
  return undefined;
}

/**
 * The password for host:port/database as user from a pgpass file: `named` (a URL's passfile=, which
 * must be readable), else PGPASSFILE or ~/.pgpass when they exist and, as libpq wants, are not readable
 * by group or others. dataio reads the file itself: node-postgres would too, but warns on every use that
 * it will stop (pg 8.23), a line on stderr of every command of someone who keeps a ~/.pgpass.
 */
export function passfilePassword(named: string | null, host: string, port: string, database: string, user: string): string | undefined {
  let text: string;
  if (named) {
    try {
      text = readFileSync(named, 'utf8');
    } catch (err) {
      throw new DataioError('DB_AUTH', `cannot read the passfile named in the database URL: ${named}`, { cause: err });
    }
  } else {
    const path = process.env['PGPASSFILE'] || join(homedir(), '.pgpass');
    try {
      if (process.platform !== 'win32' && (statSync(path).mode & 0o077) !== 0) return undefined;
      text = readFileSync(path, 'utf8');
    } catch {
      return undefined;
    }
  }
  return pgpassLookup(text, host.startsWith('/') ? 'localhost' : host, port, database, user);
}

/** A URL as the user gave it, made safe to print. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    u.searchParams.delete('password');
    return `${u.protocol}//${u.username ? u.username + (u.password ? ':***' : '') + '@' : ''}${u.host}${u.pathname}`;
  } catch {
    return '<unparseable database URL>';
  }
}

function urlTarget(url: string): ConnectionTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DataioError('USAGE', `the database URL is not a valid URL: ${redactUrl(url)}`, {
      hint: 'use postgresql://user:password@host:5432/database',
    });
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new DataioError('USAGE', `the database URL must start with postgresql://, not ${parsed.protocol}//`);
  }
  const passfile = parsed.searchParams.get('passfile');
  parsed.searchParams.delete('passfile');
  if (!parsed.password && process.env['PGPASSWORD'] === undefined) {
    const user = decodeURIComponent(parsed.username) || process.env['USER'] || '';
    const database = decodeURIComponent(parsed.pathname.slice(1)) || user;
    const host = parsed.hostname || parsed.searchParams.get('host') || 'localhost';
    // libpq's passfile= parameter (which `dataio db url` uses; node-postgres does not know it), else
    // PGPASSFILE or ~/.pgpass as libpq reads them.
    const password = passfilePassword(passfile, host, parsed.port || '5432', database, user);
    // Into the URL: node-postgres lets the connection string's fields override a separate password.
    if (password !== undefined) parsed.password = encodeURIComponent(password);
  }
  for (const key of ['sslrootcert', 'sslcert', 'sslkey']) {
    const path = parsed.searchParams.get(key);
    if (path !== null) readable(path, key);
  }
  // sslmode as libpq means it (require: encrypted, not verified; verify-full: checked against
  // sslrootcert and the host name), as a URL copied from psql or a provider's console expects;
  // node-postgres alone would treat require as verify-full, and warn.
  if (parsed.searchParams.has('sslmode') && !parsed.searchParams.has('uselibpqcompat')) parsed.searchParams.set('uselibpqcompat', 'true');
  const clientConfig: pg.ClientConfig = { connectionString: parsed.toString() };
  return { clientConfig, display: redactUrl(url), local: isLocalHost(parsed.hostname || parsed.searchParams.get('host') || undefined) };
}

/** A certificate or key file the connection names must be readable: say which, in one line. */
function readable(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new DataioError('USAGE', `cannot read the ${what} file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
      hint: `check the ${what} path in the database URL (or PG${what.toUpperCase()})`,
    });
  }
}

/**
 * TLS from libpq's variables, as libpq reads them: PGSSLMODE (disable, allow, prefer, require,
 * verify-ca, verify-full) and PGSSLROOTCERT (the CA to check the server's certificate against).
 * node-postgres alone knows PGSSLMODE only, and would verify the certificate for every mode.
 */
export function sslFromEnv(env: NodeJS.ProcessEnv): pg.ClientConfig['ssl'] {
  const mode = env['PGSSLMODE'];
  const rootcert = env['PGSSLROOTCERT'];
  const ca = rootcert !== undefined && rootcert !== '' ? readable(rootcert, 'sslrootcert') : undefined;
  switch (mode) {
    case undefined:
    case '':
      return ca !== undefined ? { ca } : undefined;
    case 'disable':
      return false;
    case 'allow':
    case 'prefer':
    case 'require':
      // Encrypted; with a CA given, checked against it as libpq does (not the host name).
      return ca !== undefined ? { ca, checkServerIdentity: () => undefined } : { rejectUnauthorized: false };
    case 'verify-ca':
      if (ca === undefined) throw new DataioError('USAGE', 'PGSSLMODE=verify-ca needs PGSSLROOTCERT: the CA to check the server against');
      return { ca, checkServerIdentity: () => undefined };
    case 'verify-full':
      return ca !== undefined ? { ca } : {};
    default:
      throw new DataioError('USAGE', `PGSSLMODE must be disable, allow, prefer, require, verify-ca or verify-full, not '${mode}'`);
  }
}

function pgEnvTarget(): ConnectionTarget {
  // node-postgres reads PGHOST, PGPORT, PGDATABASE, PGUSER and PGPASSWORD itself; the pgpass file and
  // TLS as libpq does.
  const env = process.env;
  const user = env['PGUSER'] ?? env['USER'] ?? '';
  const host = env['PGHOST'] ?? 'localhost';
  const port = env['PGPORT'] ?? '5432';
  const database = env['PGDATABASE'] ?? user;
  const display = `${user}@${host}:${port}/${database} (from PG* variables)`;
  const ssl = sslFromEnv(env);
  const clientConfig: pg.ClientConfig = ssl === undefined ? {} : { ssl };
  if (env['PGPASSWORD'] === undefined) {
    const password = passfilePassword(null, host, port, database, user);
    if (password !== undefined) clientConfig.password = password;
  }
  return { clientConfig, display, local: isLocalHost(env['PGHOST']) };
}

/** Resolve where to connect; starts the embedded server when that is the target. */
export async function resolveTarget(config: Config, notices?: Notices): Promise<ConnectionTarget> {
  const t = config.target;
  if (t.kind === 'url') return urlTarget(t.url);
  if (t.kind === 'pgenv') return pgEnvTarget();
  // Loaded only here: the embedded server's code (and node:child_process) is not needed with a database named.
  const { ensureEmbedded } = await import('./embedded.js');
  const r = await ensureEmbedded(config.home);
  if (r.started && notices) {
    notices.note(
      `dataio: started the embedded PostgreSQL on ${r.connection.host}:${r.connection.port} (data in ${config.home}); \`dataio db stop\` stops it`,
    );
  }
  const c = r.connection;
  return {
    clientConfig: { host: c.host, port: c.port, user: c.user, password: c.password, database: c.database },
    display: `embedded PostgreSQL at ${c.host}:${c.port}`,
    local: true,
  };
}

/**
 * Connect, retrying with backoff while the server says it is starting up or has no free connection
 * (SQLSTATE 57P03, 53300, …); a refused or unknown host fails at once, with one line.
 */
export async function connectClient(target: ConnectionTarget, applicationName = 'dataio', options: { retry?: boolean } = {}): Promise<pg.Client> {
  if (options.retry === false) return connectOnce(target, applicationName);
  return withRetry(
    () => connectOnce(target, applicationName),
    (err) => err instanceof DataioError && isPgError(err.cause) && isTransientSqlstate(err.cause.code),
  );
}

async function connectOnce(target: ConnectionTarget, applicationName: string): Promise<pg.Client> {
  const client = new pg.Client({
    connectionTimeoutMillis: 15_000,
    application_name: applicationName,
    ...target.clientConfig,
  });
  // An idle client whose connection drops emits 'error'; without a listener that would crash the
  // process. The failure surfaces on the next query instead.
  client.on('error', () => undefined);
  applyDeferredExtraCa(client);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw mapConnectError(err, target.display);
  }
  return client;
}

/** A connection opened before its user needs it (connectAhead). */
export interface AheadConnection {
  /** The connection, to the one caller that takes it; undefined once taken (or dropped). */
  take(): Promise<pg.Client> | undefined;
  /** Not taken: close it, without waiting for it to finish connecting. */
  drop(): void;
}

/**
 * Start connecting now, for a command that has other work to do before it needs the connection:
 * the server takes a few milliseconds to start a backend and more to authenticate, time in which
 * this process is otherwise idle (a small import here: about 10 ms of waiting before the server's
 * first reply, as many again for authentication). Resolves once the connecting has begun (one turn
 * of the event loop: the socket's connect call waits for the current work to finish), not once it is
 * done. A failure reaches whoever takes the connection.
 */
export async function connectAhead(target: ConnectionTarget, applicationName: string): Promise<AheadConnection> {
  let pending: Promise<pg.Client> | undefined = connectClient(target, applicationName);
  const connecting = pending;
  // Whoever takes it hears of a failure; until then, it is nobody's.
  connecting.catch(() => undefined);
  await new Promise<void>((resolve) => setImmediate(resolve));
  return {
    take: () => {
      const p = pending;
      pending = undefined;
      return p;
    },
    drop: () => {
      if (pending === undefined) return;
      pending = undefined;
      void connecting.then(hangUp, () => undefined);
    },
  };
}

/** The same target, at another host and port (a Citus node reached with the coordinator's credentials). */
export function atHostPort(target: ConnectionTarget, host: string, port: number): ConnectionTarget {
  const cfg = target.clientConfig;
  const display = `${host}:${port}`;
  if (typeof cfg.connectionString === 'string') {
    const u = new URL(cfg.connectionString);
    u.hostname = host.includes(':') ? `[${host}]` : host;
    u.port = String(port);
    u.searchParams.delete('host');
    u.searchParams.delete('port');
    return { clientConfig: { ...cfg, connectionString: u.toString() }, display, local: isLocalHost(host) };
  }
  return { clientConfig: { ...cfg, host, port }, display, local: isLocalHost(host) };
}

/** A target from a URL the user named (--nodes). */
export function targetOfUrl(url: string): ConnectionTarget {
  return urlTarget(url);
}

/**
 * Where COPY connections may go on a Citus cluster: the URLs the user named, or every active primary
 * node pg_dist_node lists (the one we are connected to included), reached with our credentials.
 */
export async function nodeTargets(client: pg.Client, target: ConnectionTarget, nodes: { kind: 'auto' } | { kind: 'urls'; urls: string[] }): Promise<ConnectionTarget[]> {
  if (nodes.kind === 'urls') return nodes.urls.map(urlTarget);
  const r = await client.query<{ host: string; port: number; here: boolean }>(
    `SELECT nodename AS host, nodeport AS port, groupid = (SELECT groupid FROM pg_dist_local_group) AS here
       FROM pg_dist_node WHERE isactive AND noderole = 'primary' AND (shouldhaveshards OR groupid = 0) ORDER BY groupid`,
  );
  return r.rows.map((n) => (n.here ? target : atHostPort(target, n.host, n.port)));
}

/** A Citus cluster's coordinator, from a worker node's metadata, reached with the same credentials. */
export async function coordinatorTarget(client: pg.Client, target: ConnectionTarget): Promise<ConnectionTarget> {
  const r = await client.query<{ host: string; port: number }>("SELECT nodename AS host, nodeport AS port FROM pg_dist_node WHERE groupid = 0 AND noderole = 'primary'");
  const row = r.rows[0];
  if (row === undefined) throw new DataioError('DB_ERROR', 'this Citus node does not know its coordinator (pg_dist_node has no group 0)', { hint: 'point --db at the coordinator' });
  return atHostPort(target, row.host, row.port);
}

/**
 * End a session without waiting for the server to close its end, as libpq's PQfinish does: the
 * Terminate message is written at once, and the socket no longer keeps the process alive (a CLI
 * command then exits without waiting for the backend to shut down: 7 ms of a one-row import here).
 * For a process that carries on, the session ends as with client.end().
 */
export function hangUp(client: pg.Client): void {
  void client.end().catch(() => undefined);
  (client as unknown as { connection?: { stream?: { unref?: () => void } } }).connection?.stream?.unref?.();
}

/** Run fn with a connected client, always closing it. */
export async function withClient<T>(target: ConnectionTarget, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await connectClient(target);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}
