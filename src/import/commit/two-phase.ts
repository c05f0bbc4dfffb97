/**
 * All or nothing over several connections with two-phase commit, where the server allows it
 * (max_prepared_transactions at least the worker count; a plain table, not one Citus distributes).
 * Rows are written once, straight into the table.
 *
 * Each worker connection holds one transaction for all its batches and PREPAREs it (PostgreSQL keeps
 * a prepared transaction through a crash or restart). Before the first PREPARE the coordinator writes
 * a row in dataio.import_commits, `preparing`, with a lease it renews; once every worker prepared, it
 * turns the row `decided` (flushed to WAL), then COMMIT PREPAREs every worker's transaction, and last
 * deletes the row. A crash at any point leaves either no decision (every prepared transaction will be
 * rolled back) or a decision (every one will be committed): never half an import.
 *
 * Whoever settles leftovers (settleLeftovers, at the start of every import, on any host that shares
 * the database) must know the import's own process is gone: its row's lease is over. Taking over is a
 * compare-and-set on the row, so a coordinator that was only slow and a settler can never both act.
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { DataioError } from '../../errors.js';
import { DECISIONS_PRESENT_COLUMN, DECISIONS_TABLE, ensureDataioObjects, SCHEMA } from '../../pg/dataio-schema.js';
import { quoteLiteral } from '../../pg/ident.js';
import {
  Heartbeat,
  LEASE_COLUMNS,
  LEASE_COLUMNS_DDL,
  LEASE_SELECT,
  leaseOver,
  leaseParams,
  leaseSeconds,
  leaseUnchanged,
  leaseUnchangedParams,
  leaseValues,
  liveBackends,
  type Holder,
  type LeaseRow,
} from '../../pg/lease.js';
import { isPgError } from '../../pg/pg-errors.js';
import { queryEach } from '../../pg/statements.js';
import { loadBatch, type BatchLoadContext, type BatchOutcome, type LoadableBatch } from '../load/batch-load.js';
import type { CopyPool } from '../load/copy-pool.js';
import type { Reject } from '../load/rejects.js';
import { everyBatch, type CommitMode, type Prepared } from './mode.js';
import type { TableInfo } from '../../pg/catalog.js';

export const DECISIONS = `${SCHEMA}.${DECISIONS_TABLE}`;
/** Prepared transaction names: dataio_<import id>_<worker>. */
const GID_RE = /^dataio_([0-9a-f]{16})_([0-9]+)$/;

export function newImportId(): string {
  return randomBytes(8).toString('hex');
}

export function gidFor(importId: string, worker: number): string {
  return `dataio_${importId}_${worker}`;
}

export function importIdOf(gid: string): string | undefined {
  return GID_RE.exec(gid)?.[1];
}

export async function ensureDecisionTable(client: pg.Client): Promise<void> {
  const present = async () => {
    const r = await client.query<{ ok: boolean }>('SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2) AS ok', [DECISIONS, DECISIONS_PRESENT_COLUMN]);
    return r.rows[0]?.ok === true;
  };
  await ensureDataioObjects(client, 'records the commit decisions of imports', present, [
    `CREATE TABLE IF NOT EXISTS ${DECISIONS} (import_id text PRIMARY KEY, decided_at timestamptz)`,
    // An earlier dataio's table held decisions only (its rows are decided).
    `ALTER TABLE ${DECISIONS} ADD COLUMN IF NOT EXISTS state text NOT NULL DEFAULT 'decided' CHECK (state IN ('preparing', 'decided')),
       ALTER COLUMN decided_at DROP NOT NULL, ALTER COLUMN decided_at DROP DEFAULT,
       ${LEASE_COLUMNS_DDL.split(', ').map((c) => `ADD COLUMN IF NOT EXISTS ${c}`).join(', ')}`,
  ]);
}

export async function finishPrepared(client: pg.Client, gid: string, commit: boolean): Promise<void> {
  try {
    await client.query(`${commit ? 'COMMIT' : 'ROLLBACK'} PREPARED ${quoteLiteral(gid)}`);
  } catch (err) {
    // Finished meanwhile by another process settling the same leftovers.
    if (isPgError(err) && err.code === '42704') return;
    throw err;
  }
}

/** Record that import `id` is about to prepare, under a lease of `holder`'s. */
export async function beginDecision(client: pg.Client, id: string, holder: Holder): Promise<void> {
  await client.query(
    `INSERT INTO ${DECISIONS} (import_id, state, ${LEASE_COLUMNS}) VALUES ($1, 'preparing', ${leaseValues(2)})`,
    [id, ...leaseParams(holder)],
  );
}

/**
 * Record the decision to commit: from here on, the import is committed, whatever happens. Flushed to
 * WAL before any COMMIT PREPARED (synchronous_commit may be off for the session or the server). One
 * round trip; false when the row is no longer ours to decide (a settler judged us dead and rolled the
 * prepared transactions back).
 */
export async function decideCommit(client: pg.Client, id: string, holder: Holder): Promise<boolean> {
  try {
    const results = await queryEach(
      client,
      `BEGIN; SET LOCAL synchronous_commit = on;
       UPDATE ${DECISIONS} SET state = 'decided', decided_at = now() WHERE import_id = ${quoteLiteral(id)} AND state = 'preparing' AND owner = ${quoteLiteral(holder.owner)};
       COMMIT`,
    );
    return results[2]?.rowCount === 1;
  } catch (err) {
    // A failed statement leaves the BEGIN's transaction aborted: roll it back.
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

export async function forgetDecision(client: pg.Client, id: string): Promise<void> {
  await client.query(`DELETE FROM ${DECISIONS} WHERE import_id = $1`, [id]);
}

export interface Settled {
  committed: string[];
  rolledBack: string[];
}

/**
 * Settle prepared transactions that imports whose process died left behind in this database: commit
 * those whose import recorded the decision, roll back the others. Imports whose lease is live are left
 * alone (their coordinator will finish them).
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
  const haveTable = (await client.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [DECISIONS])).rows[0]?.ok === true;
  const rows = new Map<string, LeaseRow & { state: string }>();
  if (haveTable) {
    const d = await client.query<LeaseRow & { import_id: string; state: string }>(
      `SELECT import_id, state, ${LEASE_SELECT} FROM ${DECISIONS} WHERE import_id = ANY($1)`,
      [[...byImport.keys()]],
    );
    for (const x of d.rows) rows.set(x.import_id, x);
  }
  const live = rows.size > 0 ? await liveBackends(client) : undefined;
  for (const [id, gids] of byImport) {
    const row = rows.get(id);
    let commit = false;
    if (row?.state === 'decided') commit = true;
    else if (row !== undefined) {
      // Preparing: its coordinator may still be at work. Only a lease that is over is ours to end, and
      // only if nobody else ended (or renewed) it meanwhile.
      if (!leaseOver(row, row.now, live)) continue;
      const taken = await client.query(`DELETE FROM ${DECISIONS} WHERE import_id = $1 AND state = 'preparing' AND ${leaseUnchanged(2)}`, [id, ...leaseUnchangedParams(row)]);
      if (taken.rowCount !== 1) continue;
    }
    for (const gid of gids) {
      await finishPrepared(client, gid, commit);
      (commit ? settled.committed : settled.rolledBack).push(gid);
    }
    if (commit) await forgetDecision(client, id);
  }
  return settled;
}

export class TwoPhaseCommit<B extends LoadableBatch> implements CommitMode<B> {
  readonly name = 'two-phase commit' as const;
  readonly transactions = 'import' as const;
  readonly openSql: readonly string[] = [];
  readonly siblingWaits: 'fail' | 'cancel';
  readonly fanOut = false;
  readonly sharedCopy = true;
  private readonly id = newImportId();
  private heartbeat: Heartbeat | undefined;
  private decided = false;

  constructor(
    private readonly coordinator: pg.Client,
    private readonly o: { table: TableInfo; holder: Holder; ctx: BatchLoadContext<B>; onDecided(): void },
  ) {
    this.siblingWaits = o.ctx.onError === 'skip' ? 'cancel' : 'fail';
  }

  async prepare(): Promise<Prepared> {
    return { table: this.o.table, created: false };
  }

  async ready(): Promise<void> {}

  copySql(columns: string, options: string): string {
    return `COPY ${this.o.table.sql}${columns} FROM STDIN (${options})`;
  }

  feed(batches: AsyncIterable<B>): AsyncIterable<B> {
    return everyBatch(batches);
  }

  load(client: pg.Client, pid: number | undefined, batch: B, copySql: string): Promise<BatchOutcome> {
    return loadBatch(client, pid, copySql, batch, this.o.ctx);
  }

  async finish(pool: CopyPool): Promise<Reject[]> {
    if (pool.active <= 1) {
      await pool.commit();
      return [];
    }
    const { holder } = this.o;
    await beginDecision(this.coordinator, this.id, holder);
    this.heartbeat = new Heartbeat(async () => {
      await this.coordinator.query(`UPDATE ${DECISIONS} SET lease_until = now() + make_interval(secs => $3) WHERE import_id = $1 AND owner = $2 AND state = 'preparing'`, [
        this.id,
        holder.owner,
        leaseSeconds(),
      ]);
    }).start();
    try {
      await pool.prepare((w) => gidFor(this.id, w));
    } catch (err) {
      for (const gid of (err as { prepared?: string[] }).prepared ?? []) await finishPrepared(this.coordinator, gid, false).catch(() => undefined);
      await forgetDecision(this.coordinator, this.id).catch(() => undefined);
      throw err;
    }
    await this.heartbeat.stop();
    if (!(await decideCommit(this.coordinator, this.id, holder))) {
      throw new DataioError('DB_ERROR', 'the two-phase commit was taken over by another dataio process, which judged this one gone: every row was rolled back', {
        hint: 'run the import again (a process stalled longer than DATAIO_LEASE_SECONDS looks dead to others)',
      });
    }
    this.decided = true;
    this.o.onDecided();
    // Each worker commits its own; one whose connection failed meanwhile is committed from here.
    for (const gid of await pool.commitPrepared()) await finishPrepared(this.coordinator, gid, true);
    await forgetDecision(this.coordinator, this.id);
    return [];
  }

  async abort(pool: CopyPool | undefined): Promise<void> {
    if (this.decided) return; // the next import finishes the commit
    await pool?.rollback();
  }

  async close(): Promise<void> {
    await this.heartbeat?.stop();
  }
}
