/**
 * Guard against a wait that can never end. In an all-or-nothing import every connection keeps its
 * transaction open until the end, so when one connection's row waits on a row another connection of
 * the same import inserted (a duplicate unique key, or a foreign key to a row of this import), it
 * would wait for a commit that only comes after it finishes: PostgreSQL's deadlock detector cannot see
 * this cycle, which goes through the client. We look for it with pg_blocking_pids() (live lock
 * state, not the per-transaction stats snapshot) and fail the import instead of hanging.
 */
import type pg from 'pg';

export interface SiblingWait {
  waiter: number;
  blocker: number;
}

/** Pure: which of our backends (`pids`) wait on another of ours, given the waiting backends and their blockers. */
export function findSiblingWaits(pids: readonly number[], rows: readonly { pid: number; blockers: readonly number[] }[]): SiblingWait[] {
  const ours = new Set(pids);
  const out: SiblingWait[] = [];
  for (const r of rows) {
    if (!ours.has(r.pid)) continue;
    const blocker = r.blockers.find((b) => ours.has(b) && b !== r.pid);
    if (blocker !== undefined) out.push({ waiter: r.pid, blocker });
  }
  return out;
}

/**
 * Waits of one of our backends on a transaction (or a row) of another of ours: only those can last
 * until the end of the import. Short waits on shared resources (the relation extension lock, say)
 * are not counted.
 */
export async function siblingWaits(client: pg.Client, pids: readonly number[]): Promise<SiblingWait[]> {
  if (pids.length < 2) return [];
  const r = await client.query<{ pid: number; blockers: number[] }>(
    `SELECT DISTINCT l.pid, pg_blocking_pids(l.pid) AS blockers
       FROM pg_locks l
      WHERE l.pid = ANY($1::int[]) AND NOT l.granted AND l.locktype IN ('transactionid', 'tuple')`,
    [pids],
  );
  return findSiblingWaits(pids, r.rows);
}

export async function cancelBackend(client: pg.Client, pid: number): Promise<void> {
  await client.query('SELECT pg_cancel_backend($1)', [pid]);
}
