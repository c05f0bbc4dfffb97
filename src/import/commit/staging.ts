/**
 * All or nothing without two-phase commit: the batches are COPYed in parallel into a staging table,
 * each batch in a short transaction of its own, and one final transaction on the coordinator makes
 * them the table's:
 *  - move: `INSERT INTO table SELECT … FROM staging` (an upsert adds ON CONFLICT), then the staging
 *    table is dropped. The staging table is UNLOGGED on a plain server (rows cross the WAL once, into
 *    the table); on Citus it is distributed like the table and co-located with it, so the move runs
 *    on every worker, shard next to shard.
 *  - publish (--create): the staging table *is* the new table; the final transaction moves it into
 *    the target's schema under the target's name. No row is written twice.
 * A crash (kill -9, a lost server) leaves only the staging table: the table is untouched. Staging
 * tables live in the dataio schema and are registered in dataio.import_stagings with a lease their
 * import renews; the next import on the database drops those whose lease is over.
 *
 * This is the way where two-phase commit is not: max_prepared_transactions below the worker count
 * (PostgreSQL's default is 0, as on most managed services), a pooler in front, a Citus cluster (which
 * refuses user PREPARE TRANSACTION across nodes), and every upsert.
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { DataioError } from '../../errors.js';
import { lookupTable, type TableInfo } from '../../pg/catalog.js';
import { connectClient, type ConnectionTarget } from '../../pg/connect.js';
import { ensureDataioObjects, SCHEMA, STAGING_PREFIX } from '../../pg/dataio-schema.js';
import { displayName, qualifiedName, quoteIdent, quoteLiteral, type TableName } from '../../pg/ident.js';
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
import { loadBatch, type BatchLoadContext, type BatchOutcome, type LoadableBatch } from '../load/batch-load.js';
import type { CopyPool } from '../load/copy-pool.js';
import type { OnConflict } from '../options.js';
import { checkColumns, type ColumnDef } from '../plan/table.js';
import type { Reject } from '../load/rejects.js';
import { BATCH_POSITION_DDL, BATCH_POSITION_PRESENT, batchDefault } from './batch-position.js';
import { batchPosition, everyBatch, type CommitMode, type MoveHints, type Prepared } from './mode.js';
import { moveSkipping } from './move-skipping.js';
import { moveFailure, moveSql, POSITION_COLUMNS } from './move.js';
import { countedMove, type UpsertCounts } from './upsert-counts.js';

export const STAGINGS = `${SCHEMA}.import_stagings`;

/** The registry of staging tables (and, off Citus, the function their batch column defaults to). */
export async function ensureStagingRegistry(client: pg.Client, citus: boolean): Promise<void> {
  const present = `to_regclass($1) IS NOT NULL${citus ? '' : ` AND ${BATCH_POSITION_PRESENT}`}`;
  await ensureDataioObjects(client, 'holds the staging tables of imports', async () => (await client.query<{ ok: boolean }>(`SELECT ${present} AS ok`, [STAGINGS])).rows[0]?.ok === true, [
    `CREATE TABLE IF NOT EXISTS ${STAGINGS} (name text PRIMARY KEY, import_id text, target text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), ${LEASE_COLUMNS_DDL})`,
    ...(citus ? [] : [BATCH_POSITION_DDL]),
  ]);
}

/**
 * Drop the staging tables of imports whose process is gone (their lease is over). A resumable
 * import's staging table (it has an import id) stays: its next run goes on with it. Returns how many.
 */
export async function dropLeftoverStagings(client: pg.Client): Promise<number> {
  const r = await client.query<LeaseRow & { name: string }>(`SELECT name, ${LEASE_SELECT} FROM ${STAGINGS} WHERE import_id IS NULL`,
  );
  if (r.rows.length === 0) return 0;
  const live = await liveBackends(client);
  let dropped = 0;
  for (const row of r.rows) {
    if (!leaseOver(row, row.now, live)) continue;
    // The registry row and the table go together; a process that renewed meanwhile keeps both.
    try {
      await client.query('BEGIN');
      const taken = await client.query(`DELETE FROM ${STAGINGS} WHERE name = $1 AND ${leaseUnchanged(2)}`, [row.name, ...leaseUnchangedParams(row)]);
      if (taken.rowCount === 1) {
        await client.query(`DROP TABLE IF EXISTS ${SCHEMA}.${quoteIdent(row.name)}`);
        dropped++;
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }
  return dropped;
}

/**
 * The column definitions of a staging table for `columns` of `table`: their types as the table has
 * them, NOT NULL where it says so (`notNull`: so such a row is refused by its batch's COPY, naming its
 * line), no other constraint; with `positions`, each row's input position (move.ts).
 */
export async function stagingColumns(client: pg.Client, table: TableInfo, columns: readonly string[], o: { notNull: boolean; positions: boolean; foldedBatch: boolean }): Promise<string> {
  const defs = await client.query<{ name: string; type: string; notnull: boolean }>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS notnull
       FROM pg_attribute a WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attname = ANY($2)
      ORDER BY array_position($2, a.attname::text)`,
    [table.oid, columns],
  );
  const cols = defs.rows.map((d) => `${quoteIdent(d.name)} ${d.type}${o.notNull && d.notnull ? ' NOT NULL' : ''}`);
  // A row's place in its batch: a sequence each backend takes 10,000 values of at a time (values stay
  // increasing within a backend, so within a batch, which one COPY loads). One value at a time, as
  // bigserial takes them, cost a 2M-row COPY about 0.7 s here. Citus keeps its own bigserial (its
  // nodes draw from ranges of their own).
  const row = table.citus === undefined ? 'bigint GENERATED BY DEFAULT AS IDENTITY (CACHE 10000)' : 'bigserial';
  if (o.positions) cols.push(`${POSITION_COLUMNS[0]} bigint NOT NULL DEFAULT ${batchDefault(o.foldedBatch)}`, `${POSITION_COLUMNS[1]} ${row}`);
  return cols.join(', ');
}

/**
 * A staging table's storage parameters: no autovacuum. Once a COPY has put enough rows into it,
 * autovacuum takes it up, though it is read once, by the move, and dropped (or published, --create):
 * on a 2M-row upsert here an autovacuum worker scanned it beside the move (two cores shared by three
 * busy processes), and the final DROP TABLE then waited deadlock_timeout (1 s) for that worker to be
 * cancelled. (PostgreSQL still runs an anti-wraparound vacuum when a table's age calls for one.)
 */
const NO_AUTOVACUUM = ['autovacuum_enabled', 'toast.autovacuum_enabled'] as const;
export const STAGING_STORAGE = `WITH (${NO_AUTOVACUUM.map((p) => `${p} = off`).join(', ')})`;

/** What a published table (--create) resets as it becomes the user's: autovacuum as the server sets it. */
const STAGING_STORAGE_RESET = NO_AUTOVACUUM.join(', ');

/** A batch's transaction: its durability comes from the final commit; through Citus, one connection per node. */
export function batchBegin(citus: boolean): string {
  // A batch needs no durability of its own: the final transaction's synchronous commit flushes the
  // WAL before it, in order. Through Citus, one connection per node carries a batch (with the
  // default of one per shard, every batch's transaction opened dozens of connections).
  return ['BEGIN', 'SET LOCAL synchronous_commit = off', ...(citus ? ["SET LOCAL citus.multi_shard_modify_mode = 'sequential'"] : [])].join('; ');
}

export interface StagingOptions<B extends LoadableBatch> {
  coordinator: pg.Client;
  /** For undoing when the coordinator's connection is gone. */
  target: ConnectionTarget;
  holder: Holder;
  tableName: TableName;
  /** The table to move into; undefined: --create, the staging table is published as the table. */
  table: TableInfo | undefined;
  create: ColumnDef[] | undefined;
  truncate: boolean;
  onConflict: OnConflict;
  key: string[] | undefined;
  /** Record each row's input position (batch, row): an upsert's last-wins needs it. */
  positions: boolean;
  citus: boolean;
  ctx: BatchLoadContext<B>;
  warn(message: string): void;
}

function stageName(): string {
  return `${STAGING_PREFIX}${randomBytes(8).toString('hex')}`;
}

export class Staging<B extends LoadableBatch> implements CommitMode<B> {
  readonly name = 'staging' as const;
  readonly transactions = 'batch' as const;
  readonly openSql: readonly string[] = [];
  readonly siblingWaits = 'off' as const;
  readonly sharedCopy = false;
  readonly fanOut: boolean;
  private readonly o: StagingOptions<B>;
  private readonly stage = stageName();
  private stagingSql: string;
  private columns: string[] = [];
  private heartbeat: Heartbeat | undefined;
  private registered = false;
  private published = false;
  /** Per-batch transaction settings. */
  private readonly batchSql: string;

  constructor(o: StagingOptions<B>) {
    this.o = o;
    this.stagingSql = `${SCHEMA}.${quoteIdent(this.stage)}`;
    // A distributed table's staging table is distributed too: any node takes its COPY.
    this.fanOut = o.table?.citus?.kind === 'distributed';
    this.batchSql = batchBegin(o.citus);
  }

  private get publishing(): boolean {
    return this.o.table === undefined;
  }

  async prepare(): Promise<Prepared> {
    const c = this.o.coordinator;
    await ensureStagingRegistry(c, this.o.citus);
    if (this.publishing) {
      // The new table, loaded under a name of dataio's until it is published (logged: it stays);
      // without autovacuum until then, or its publishing could wait a second for a vacuum worker.
      const columns = this.o.create ?? [];
      checkColumns(columns);
      await this.createRegistered(`CREATE TABLE ${this.stagingSql} (${columns.map((x) => `${quoteIdent(x.name)} ${x.type}`).join(', ')}) ${STAGING_STORAGE}`);
      const t = await lookupTable(c, { schema: SCHEMA, name: this.stage }, this.o.citus);
      if (t === undefined) throw new DataioError('INTERNAL', 'the staging table vanished right after it was created');
      return { table: { ...t, display: displayName(this.o.tableName) }, created: true };
    }
    return { table: this.o.table as TableInfo, created: false };
  }

  /**
   * Make the staging table and its registry row in one transaction, so that neither is ever there
   * without the other (serverFacts looks for leftovers only where a staging table exists), then keep
   * the lease alive.
   */
  private async createRegistered(create: string): Promise<void> {
    const c = this.o.coordinator;
    const h = this.o.holder;
    await c.query('BEGIN');
    try {
      await c.query(`INSERT INTO ${STAGINGS} (name, target, ${LEASE_COLUMNS}) VALUES ($1, $2, ${leaseValues(3)})`, [this.stage, qualifiedName(this.o.tableName), ...leaseParams(h)]);
      await c.query(create);
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
    this.registered = true;
    this.heartbeat = new Heartbeat(async () => {
      await c.query(`UPDATE ${STAGINGS} SET lease_until = now() + make_interval(secs => $3) WHERE name = $1 AND owner = $2`, [this.stage, h.owner, leaseSeconds()]);
    }).start();
  }

  /**
   * The staging table for the input's columns (moving): their types as the table has them, NOT NULL
   * where the table says so (so such a row is refused by its batch's COPY, naming its line), no other
   * constraint, no index. `columns` undefined: every column of the table.
   */
  private move: MoveHints | undefined;

  async ready(columns: readonly string[] | undefined, move: MoveHints): Promise<void> {
    this.move = move;
    const table = this.o.table;
    if (table === undefined) return; // publishing: the staging table exists and is the table
    const c = this.o.coordinator;
    const wanted = columns ?? table.columns.map((x) => x.name);
    this.columns = [...wanted];
    const cols = await stagingColumns(c, table, wanted, { notNull: true, positions: this.o.positions, foldedBatch: !this.o.citus });
    const distributed = table.citus?.kind === 'distributed' && table.citus.column !== null && wanted.includes(table.citus.column);
    // Unlogged: its rows need no WAL, they cross it once, into the table (a server crash empties it,
    // and takes the import with it, which then starts over).
    await this.createRegistered(`CREATE UNLOGGED TABLE ${this.stagingSql} (${cols}) ${STAGING_STORAGE}`);
    if (distributed) {
      await c.query(`SELECT create_distributed_table($1, $2, colocate_with => $3)`, [`${SCHEMA}.${this.stage}`, table.citus?.column, table.sql]);
    }
  }

  copySql(columns: string, options: string): string {
    return `COPY ${this.stagingSql}${columns} FROM STDIN (${options})`;
  }

  feed(batches: AsyncIterable<B>): AsyncIterable<B> {
    return everyBatch(batches);
  }

  async load(client: pg.Client, pid: number | undefined, batch: B, copySql: string): Promise<BatchOutcome> {
    await client.query(this.o.positions ? `${this.batchSql}; SET LOCAL dataio.batch = ${batchPosition(batch.file, batch.offset)}` : this.batchSql);
    try {
      const out = await loadBatch(client, pid, copySql, batch, this.o.ctx);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  upserted: UpsertCounts | undefined;

  async finish(): Promise<Reject[]> {
    const c = this.o.coordinator;
    let rejects: Reject[] = [];
    await this.heartbeat?.stop();
    try {
      await c.query('BEGIN; SET LOCAL synchronous_commit = on');
      if (this.publishing) {
        const schema = this.o.tableName.schema ?? (await c.query<{ s: string }>('SELECT current_schema() AS s')).rows[0]?.s ?? 'public';
        await c.query(`ALTER TABLE ${this.stagingSql} RESET (${STAGING_STORAGE_RESET})`);
        await c.query(`ALTER TABLE ${this.stagingSql} SET SCHEMA ${quoteIdent(schema)}`);
        await c.query(`ALTER TABLE ${quoteIdent(schema)}.${quoteIdent(this.stage)} RENAME TO ${quoteIdent(this.o.tableName.name)}`);
      } else {
        const table = this.o.table as TableInfo;
        if (this.o.truncate) await c.query(`TRUNCATE ${table.sql}`);
        // Citus runs the move on every shard at once, by default over up to 16 connections per node;
        // as many as the load used is enough (measured on 2 cores with 3 nodes: 1 connection per node
        // 1.0-1.1 s, 16 per node 2.6-2.7 s for 1M rows).
        if (this.o.citus) await c.query(`SET LOCAL citus.max_adaptive_executor_pool_size = ${Math.max(1, this.move?.perNode ?? 1)}`);
        const spec = { target: table.sql, staging: this.stagingSql, columns: this.columns, onConflict: this.o.onConflict, key: this.o.key };
        if (this.o.ctx.onError === 'skip') {
          rejects = (await moveSkipping(c, { ...(this.move as MoveHints), spec })).rejects;
        } else {
          this.upserted = await countedMove(c, table, this.o.onConflict !== 'error', () => c.query(moveSql(spec)));
        }
        await c.query(`DROP TABLE ${this.stagingSql}`);
      }
      await c.query(`DELETE FROM ${STAGINGS} WHERE name = $1`, [this.stage]);
      await c.query('COMMIT');
      this.published = true;
      return rejects;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw moveFailure(err, { table: displayName(this.o.tableName), key: this.o.key, publishing: this.publishing });
    }
  }

  async abort(_pool: CopyPool | undefined, _failure: DataioError): Promise<void> {
    await this.heartbeat?.stop();
    if (!this.registered || this.published) return;
    const drop = async (client: pg.Client) => {
      await client.query('ROLLBACK').catch(() => undefined);
      await client.query(`DROP TABLE IF EXISTS ${this.stagingSql}; DELETE FROM ${STAGINGS} WHERE name = ${quoteLiteral(this.stage)}`);
    };
    try {
      await drop(this.o.coordinator);
    } catch {
      let fresh: pg.Client | undefined;
      try {
        fresh = await connectClient(this.o.target, 'dataio import');
        await drop(fresh);
      } catch (err) {
        // Its lease runs out: the next import drops it.
        this.o.warn(`could not drop the staging table ${this.stagingSql} of this import (${(err as Error).message}); the next import on this database drops it`);
      } finally {
        await fresh?.end().catch(() => undefined);
      }
    }
  }

  async close(): Promise<void> {
    await this.heartbeat?.stop();
  }
}
