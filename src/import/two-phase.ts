/**
 * A crash-safe final commit for an all-or-nothing import spread over several connections.
 *
 * Each worker connection PREPAREs its transaction (PostgreSQL keeps a prepared transaction through a
 * crash or restart); the coordinator then records the decision, a row in dataio.import_commits,
 * committed on its own; only then does it COMMIT PREPARED every worker's transaction, and last it
 * deletes the decision. A crash at any point leaves either no decision (every prepared transaction
 * will be rolled back) or a decision (every one will be committed): never half an import.
 *
 * Whoever settles the leftovers must know the import's own process is gone: the coordinator holds a
 * session advisory lock for its import id from before the first PREPARE to the end, so a leftover is
 * settled only by a process that can take that lock (settleLeftovers, run at the start of every
 * import, on any host that shares the database).
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { ensureDataioObjects, LOCK_SPACE } from '../pg/dataio-schema.js';
import { quoteLiteral } from '../pg/ident.js';

export const DECISIONS = 'dataio.import_commits';
/** Prepared transaction names: dataio_<import id>_<worker>. */
const GID_RE = /^dataio_([0-9a-f]{16})_([0-9]+)$/;
/** Advisory locks of running imports live in their own key space (next to documents'). */
const IMPORT_LOCK_SPACE = LOCK_SPACE + 1;

export function newImportId(): string {
  return randomBytes(8).toString('hex');
}

export function gidFor(importId: string, worker: number): string {
  return `dataio_${importId}_${worker}`;
}

export function importIdOf(gid: string): string | undefined {
  return GID_RE.exec(gid)?.[1];
}

/** The number of prepared transactions the server allows (0: two-phase commit is off). */
export async function maxPreparedTransactions(client: pg.Client): Promise<number> {
  const r = await client.query<{ n: string }>("SELECT current_setting('max_prepared_transactions') AS n");
  return Number(r.rows[0]?.n ?? 0);
}

export async function ensureDecisionTable(client: pg.Client): Promise<void> {
  const present = async () => {
    const r = await client.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [DECISIONS]);
    return r.rows[0]?.ok === true;
  };
  await ensureDataioObjects(client, 'records the commit decisions of imports', present, [
    `CREATE TABLE IF NOT EXISTS ${DECISIONS} (import_id text PRIMARY KEY, decided_at timestamptz NOT NULL DEFAULT now())`,
  ]);
}

/** Hold (session-level) the lock that says "this import's coordinator is alive". */
export async function lockImport(client: pg.Client, importId: string): Promise<void> {
  await client.query('SELECT pg_advisory_lock($1, hashtext($2))', [IMPORT_LOCK_SPACE, importId]);
}

export async function unlockImport(client: pg.Client, importId: string): Promise<void> {
  await client.query('SELECT pg_advisory_unlock($1, hashtext($2))', [IMPORT_LOCK_SPACE, importId]);
}

/**
 * Record the decision to commit: from here on, the import is committed, whatever happens. Flushed to
 * WAL before any COMMIT PREPARED (synchronous_commit may be off for the session or the server).
 */
export async function decideCommit(client: pg.Client, importId: string): Promise<void> {
  // One round trip. When a statement fails, the server skips the rest of the string, and the
  // transaction the BEGIN opened is left aborted: roll it back.
  try {
    await client.query(`BEGIN; SET LOCAL synchronous_commit = on; INSERT INTO ${DECISIONS} (import_id) VALUES (${quoteLiteral(importId)}); COMMIT`);
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

export async function forgetDecision(client: pg.Client, importId: string): Promise<void> {
  await client.query(`DELETE FROM ${DECISIONS} WHERE import_id = $1`, [importId]);
}

export async function finishPrepared(client: pg.Client, gid: string, commit: boolean): Promise<void> {
  await client.query(`${commit ? 'COMMIT' : 'ROLLBACK'} PREPARED ${quoteLiteral(gid)}`);
}

export interface Settled {
  committed: string[];
  rolledBack: string[];
}

/**
 * Settle prepared transactions that imports whose process died left behind in this database: commit
 * those whose import recorded the decision, roll back the others. Imports still running (their lock
 * is held) are left alone.
 */
export async function settleLeftovers(client: pg.Client): Promise<Settled> {
  const settled: Settled = { committed: [], rolledBack: [] };
  const r = await client.query<{ gid: string }>("SELECT gid FROM pg_prepared_xacts WHERE database = current_database() AND gid LIKE 'dataio\\_%' ORDER BY gid");
  const byImport = new Map<string, string[]>();
  for (const { gid } of r.rows) {
    const id = importIdOf(gid);
    if (id !== undefined) byImport.set(id, [...(byImport.get(id) ?? []), gid]);
  }
  if (byImport.size === 0) return settled;
  const decisions = await client.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [DECISIONS]);
  const haveTable = decisions.rows[0]?.ok === true;
  for (const id of byImport.keys()) {
    const got = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok', [IMPORT_LOCK_SPACE, id]);
    if (got.rows[0]?.ok !== true) continue; // its coordinator is alive and will finish it
    try {
      // Listed again under the lock: the coordinator may have finished between the first look and now.
      const again = await client.query<{ gid: string }>('SELECT gid FROM pg_prepared_xacts WHERE database = current_database() AND gid LIKE $1 ORDER BY gid', [`dataio\\_${id}\\_%`]);
      const gids = again.rows.map((x) => x.gid).filter((g) => importIdOf(g) === id);
      let commit = false;
      if (haveTable) {
        const d = await client.query(`SELECT 1 FROM ${DECISIONS} WHERE import_id = $1`, [id]);
        commit = (d.rowCount ?? 0) > 0;
      }
      for (const gid of gids) {
        await finishPrepared(client, gid, commit);
        (commit ? settled.committed : settled.rolledBack).push(gid);
      }
      if (commit) await forgetDecision(client, id);
    } finally {
      await unlockImport(client, id);
    }
  }
  return settled;
}
