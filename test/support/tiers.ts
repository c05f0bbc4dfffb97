/**
 * Test support: the tiers, extra servers that scripts/test.mjs starts (scripts/pg-servers.mjs
 * startTiers) only when a selected test file imports this module and names them, and that only the
 * tests asking for them use (every other test loops over env.ts testServers()).
 *
 * - pg15-default: Debian PostgreSQL 15 with PostgreSQL's default settings (max_prepared_transactions = 0).
 * - pgbouncer-transaction, pgbouncer-session: one PgBouncer in front of the pg15-default server, as
 *   databases postgres_transaction and postgres_session (user postgres only, pools of 10); directUrl is
 *   the server behind it, for pg_locks and pg_stat_activity.
 * - citus: a Citus coordinator (url) and two workers (workers), PostgreSQL 15.
 * - tls: the pg15-default server over TLS: url has sslmode=verify-full and sslrootcert=caFile; a client
 *   trusting only wrongCaFile must refuse it. Plain connections to the pg15-default url still work.
 *
 * A tier whose software is not installed here is in skippedTiers(), with why, and tierServers() is [].
 */
import { describe, it } from 'node:test';

export type Tier = 'pg15-default' | 'pgbouncer-transaction' | 'pgbouncer-session' | 'citus' | 'tls';

export const TIERS: readonly Tier[] = ['pg15-default', 'pgbouncer-transaction', 'pgbouncer-session', 'citus', 'tls'];

export interface TierServer {
  name: string;
  url: string;
  tier: Tier;
  /** pgbouncer tiers: the server behind the pooler, direct. */
  directUrl?: string;
  /** citus: worker node URLs (url is the coordinator). */
  workers?: string[];
  /** tls: the CA that signed the server's certificate (for 127.0.0.1 and localhost). */
  caFile?: string;
  /** tls: a CA that did not. */
  wrongCaFile?: string;
}

interface TierRun {
  servers: TierServer[];
  skipped: { tier: Tier; why: string }[];
}

function run(): TierRun {
  const raw = process.env['DATAIO_TEST_TIERS'];
  if (!raw) return { servers: [], skipped: TIERS.map((tier) => ({ tier, why: 'DATAIO_TEST_TIERS is not set (run the tests with npm test)' })) };
  return JSON.parse(raw) as TierRun;
}

/** The servers of `tier` that run now; [] when it is not available (see skippedTiers()). */
export function tierServers(tier: Tier): TierServer[] {
  return run().servers.filter((s) => s.tier === tier);
}

/** The tiers not running, each with why. */
export function skippedTiers(): { tier: Tier; why: string }[] {
  return run().skipped;
}

/** Why `tier` is not running, or undefined when it is: for `it(…, { skip: whySkipped(tier) })`. */
export function whySkipped(tier: Tier): string | undefined {
  if (tierServers(tier).length > 0) return undefined;
  return skippedTiers().find((s) => s.tier === tier)?.why ?? 'not started';
}

/**
 * describe() each server of the tier (titled "`what` on the `tier` tier", or "`tier` tier"), or, when
 * the tier is not running, one skipped test saying why.
 */
export function forTier(tier: Tier, body: (s: TierServer) => void, what?: string): void {
  const servers = tierServers(tier);
  if (servers.length === 0) {
    it(`${tier} tier`, { skip: whySkipped(tier) }, () => undefined);
    return;
  }
  for (const s of servers) describe(what === undefined ? `${tier} tier` : `${what} on the ${tier} tier`, () => body(s));
}
