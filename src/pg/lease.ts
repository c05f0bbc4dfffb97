/**
 * Leases: whatever must outlive one transaction (who loads a batch of a resumable import, who runs a
 * two-phase commit, which staging table belongs to a running import, who writes or reads a document)
 * is a row with an owner and an expiry, renewed by a heartbeat while its owner works. Never a session
 * advisory lock, a plain SET or a temporary table: behind a transaction pooler (PgBouncer in
 * transaction mode) each transaction may run on another server connection, and session state stays
 * behind on a connection that someone else gets next. Rows in tables also work for several dataio
 * processes on several hosts, and on every node of a Citus cluster.
 *
 * A lease is live while its expiry lies ahead. When its holder's connection runs on the same server
 * as ours and is not pooled, we also know at once when the holder died (its backend is gone from
 * pg_stat_activity), so a rerun right after `kill -9` need not wait for the expiry; behind a pooler
 * the expiry alone decides. Taking over a lease is a compare-and-set on the owner and expiry that
 * were read, so two processes can never both take one.
 */
import type pg from 'pg';
import { randomBytes } from 'node:crypto';
import { backendPid } from './backend.js';

/** Lease length, seconds; DATAIO_LEASE_SECONDS overrides (tests shorten it). */
export function leaseSeconds(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env['DATAIO_LEASE_SECONDS']);
  return Number.isFinite(v) && v >= 1 && v <= 3600 ? v : 30;
}

/** The columns every leased row carries (DDL). */
export const LEASE_COLUMNS_DDL = 'owner text, lease_until timestamptz, holder_server text, holder_pid integer, holder_start timestamptz';

/** This process's identity as a lease holder, and how to tell whether it is still alive. */
export interface Holder {
  /** Random per process run: what `owner` holds. */
  owner: string;
  /** The server our coordinating connection reaches (address:port), for the liveness shortcut. */
  server: string;
  /** That connection's backend pid and start, or null when it is pooled (the pid means nothing then). */
  pid: number | null;
  started: Date | null;
  /** The connection goes through a pooler: its server backend may change between transactions. */
  pooled: boolean;
}

const SERVER_SQL = `coalesce(host(inet_server_addr()), 'local') || ':' || current_setting('port')`;

/** Select-list items that tell who we are (see holderFrom): fold them into a query that runs anyway. */
export const HOLDER_SELECT = `${SERVER_SQL} AS holder_server, pg_backend_pid() AS holder_pid,
            (SELECT backend_start FROM pg_stat_get_activity(pg_backend_pid())) AS holder_start`;

export interface HolderRow {
  holder_server: string;
  holder_pid: number;
  holder_start: Date | null;
}

/**
 * Who we are, from a row of HOLDER_SELECT on the coordinating connection: a pooler (PgBouncer) hands
 * the client a made-up BackendKeyData, so the pid the protocol gave us differs from pg_backend_pid()
 * exactly when a pooler sits in between.
 */
export function holderFrom(client: pg.Client, row: HolderRow, owner = newOwner()): Holder {
  const pooled = backendPid(client) !== row.holder_pid;
  return { owner, server: row.holder_server, pid: pooled ? null : row.holder_pid, started: pooled ? null : row.holder_start, pooled };
}

/** Who we are, in a round trip of its own. */
export async function holderOf(client: pg.Client, owner = newOwner()): Promise<Holder> {
  const r = await client.query<HolderRow>(`SELECT ${HOLDER_SELECT}`);
  return holderFrom(client, r.rows[0] as HolderRow, owner);
}

export function newOwner(): string {
  return randomBytes(8).toString('hex');
}

/** A leased row as read back (LEASE_SELECT), with the server's clock. */
export interface LeaseRow {
  owner: string | null;
  lease_until: Date | null;
  /** lease_until exactly (a Date keeps milliseconds, the column microseconds): what a compare-and-set compares. */
  lease_stamp: string | null;
  holder_server: string | null;
  holder_pid: number | null;
  holder_start: Date | null;
  now: Date;
}

/** The select list of a leased row (LeaseRow). */
export const LEASE_SELECT = 'owner, lease_until, lease_until::text AS lease_stamp, holder_server, holder_pid, holder_start, now() AS now';

/**
 * A compare-and-set condition: the lease is still the one read (`row`), neither renewed nor taken
 * since; parameters $first (owner) and $first+1 (leaseUnchangedParams).
 */
export function leaseUnchanged(first: number): string {
  // The stamp is cast, not the column: Citus refuses a STABLE cast of a column in an UPDATE.
  return `owner IS NOT DISTINCT FROM $${first} AND lease_until IS NOT DISTINCT FROM $${first + 1}::timestamptz`;
}

export function leaseUnchangedParams(row: LeaseRow): unknown[] {
  return [row.owner, row.lease_stamp];
}

/** Values for the lease columns (owner, lease_until, holder_server, holder_pid, holder_start), parameters $first… (leaseParams). */
export function leaseValues(first: number): string {
  return `$${first}, now() + make_interval(secs => $${first + 1}), $${first + 2}, $${first + 3}, $${first + 4}`;
}

export function leaseParams(h: Holder, seconds = leaseSeconds()): unknown[] {
  return [h.owner, seconds, h.server, h.pid, h.started];
}

/** `SET` list that gives a row to `h` (parameters as leaseValues). */
export function leaseAssign(first: number): string {
  return `owner = $${first}, lease_until = now() + make_interval(secs => $${first + 1}), holder_server = $${first + 2}, holder_pid = $${first + 3}, holder_start = $${first + 4}`;
}

/** The columns leaseValues fills, for an INSERT's column list. */
export const LEASE_COLUMNS = 'owner, lease_until, holder_server, holder_pid, holder_start';

/**
 * The backends alive on the server `client` is connected to, as a set of "pid@start" keys, to judge
 * leases whose holder ran there. A backend of another role shows its pid but not its start: it counts
 * as alive whatever its start (the pid might have been reused: then the expiry decides).
 */
export async function liveBackends(client: pg.Client): Promise<{ server: string; alive(pid: number, started: Date | null): boolean }> {
  const r = await client.query<{ server: string; pids: number[]; starts: (Date | null)[] }>(
    `SELECT ${SERVER_SQL} AS server, coalesce(array_agg(pid), '{}') AS pids, coalesce(array_agg(backend_start), '{}') AS starts FROM pg_stat_activity`,
  );
  const row = r.rows[0] as { server: string; pids: number[]; starts: (Date | null)[] };
  const byPid = new Map<number, (Date | null)[]>();
  row.pids.forEach((pid, i) => byPid.set(pid, [...(byPid.get(pid) ?? []), row.starts[i] ?? null]));
  return {
    server: row.server,
    alive: (pid, started) => (byPid.get(pid) ?? []).some((s) => s === null || started === null || s.getTime() === started.getTime()),
  };
}

/**
 * Is this lease over? Its expiry passed, or (known only for a holder on the same server whose
 * connection was not pooled) its holder's backend is gone. `now` is the server's clock (compare
 * expiries with the server's time, never with ours).
 */
export function leaseOver(l: Omit<LeaseRow, 'now' | 'lease_stamp'>, now: Date, live: { server: string; alive(pid: number, started: Date | null): boolean } | undefined): boolean {
  if (l.owner === null || l.lease_until === null) return true;
  if (l.lease_until.getTime() <= now.getTime()) return true;
  if (live === undefined || l.holder_pid === null || l.holder_server !== live.server) return false;
  return !live.alive(l.holder_pid, l.holder_start);
}

/**
 * Renews leases every third of their length while work goes on: `renew` runs one UPDATE that
 * extends every lease of this process. A failed renewal is retried at the next beat; if the leases
 * lapse meanwhile, another process may take the work over, and the compare-and-set on completion
 * makes sure only one of the two counts.
 */
export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly renew: () => Promise<void>,
    private readonly seconds = leaseSeconds(),
  ) {}

  start(): this {
    if (this.timer !== undefined) return this;
    this.timer = setInterval(() => {
      if (this.running !== undefined) return;
      this.running = this.renew()
        .catch(() => undefined)
        .finally(() => (this.running = undefined));
    }, Math.max(250, (this.seconds * 1000) / 3));
    this.timer.unref();
    return this;
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
