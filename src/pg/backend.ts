/**
 * A connection's server process. The pid in the protocol's BackendKeyData is the server's own only on
 * a direct connection: a pooler (PgBouncer) hands out one of its own making, so code that needs the
 * real backend (to look it up in pg_locks or pg_stat_activity, or to cancel it) asks the server.
 */
import type pg from 'pg';
import { queryEach } from './statements.js';

/** The pid the protocol gave this connection (a pooler's made-up one behind PgBouncer). */
export function backendPid(client: pg.Client): number {
  return (client as unknown as { processID: number }).processID;
}

/**
 * Begin a transaction, run `statements` in it and learn its server backend, in one round trip (a
 * simple query of several statements: what a parallel import's every COPY connection does before its
 * first COPY).
 */
export async function beginOnServer(client: pg.Client, statements: readonly string[] = []): Promise<number> {
  const results = await queryEach(client, ['BEGIN', ...statements, 'SELECT pg_backend_pid() AS pid'].join('; '));
  return (results[results.length - 1]?.rows[0] as { pid: number }).pid;
}
