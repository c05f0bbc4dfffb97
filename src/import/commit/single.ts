/**
 * One connection, one transaction: the table (when --create makes it), the TRUNCATE and every batch
 * commit together or not at all, a crash included. The way for a small input (one batch: a second
 * connection would only cost its start-up), for --truncate (TRUNCATE admits no other writer until the
 * commit; rows loaded into a table truncated in the same transaction are written frozen), with
 * --workers 1, and where nothing else is possible (a role that may create nothing of dataio's own).
 *
 * An input of one batch, and nothing else to do (no table to make, no TRUNCATE, no upsert, no
 * savepoints for --on-error skip), is one COPY: atomic by itself, as psql's \copy is, without a BEGIN
 * and a COMMIT of its own (two round trips of a small file's few). The transaction begins only once
 * a second batch shows (feed looks one batch ahead for it).
 */
import type pg from 'pg';
import type { DataioError } from '../../errors.js';
import type { TableInfo } from '../../pg/catalog.js';
import { displayName, type TableName } from '../../pg/ident.js';
import { loadBatch, type BatchLoadContext, type BatchOutcome, type LoadableBatch } from '../load/batch-load.js';
import type { CopyPool } from '../load/copy-pool.js';
import type { OnConflict } from '../options.js';
import { createTable, type ColumnDef } from '../plan/table.js';
import type { Reject } from '../load/rejects.js';
import { batchPosition, everyBatch, type CommitMode, type MoveHints, type Prepared } from './mode.js';
import { moveSkipping } from './move-skipping.js';
import { moveFailure, moveSql } from './move.js';
import { stagingColumns } from './staging.js';
import { countedMove, type UpsertCounts } from './upsert-counts.js';

export class SingleConnection<B extends LoadableBatch> implements CommitMode<B> {
  readonly name = 'one connection' as const;
  readonly transactions = 'import' as const;
  readonly openSql: readonly string[] = [];
  readonly siblingWaits = 'off' as const;
  readonly fanOut = false;
  private freeze = false;
  /** An upsert marks each batch's rows with a statement before its COPY: no shared COPY then. */
  get sharedCopy(): boolean {
    return this.o.upsert === undefined;
  }
  /** The transaction is open: everything that is not a lone COPY runs in it. */
  private begun = false;
  upserted: UpsertCounts | undefined;

  constructor(
    private readonly coordinator: pg.Client,
    private readonly o: {
      table: TableInfo | undefined;
      tableName: TableName;
      create: ColumnDef[] | undefined;
      truncate: boolean;
      citus: boolean;
      ctx: BatchLoadContext<B>;
      /** An upsert: the batches go into a temporary table (dropped at commit), moved into the table at the end. */
      upsert: { onConflict: OnConflict; key: string[] | undefined } | undefined;
    },
  ) {}

  private table: TableInfo | undefined;
  private columns: string[] = [];
  /** Dropped with the transaction: nothing stays on the session (behind a pooler, on someone else's). */
  private static readonly TEMP = 'dataio_stage';

  private async begin(): Promise<void> {
    if (this.begun) return;
    // Whatever happens to the round trip, the transaction may be open: abort() rolls it back.
    this.begun = true;
    await this.coordinator.query('BEGIN');
  }

  async prepare(): Promise<Prepared> {
    // The pool adopts this connection inside the transaction begun here, or (feed) about to begin.
    if (this.o.table === undefined || this.o.truncate || this.o.upsert !== undefined || this.o.ctx.onError === 'skip') await this.begin();
    let table = this.o.table;
    let created = false;
    if (table === undefined) {
      table = await createTable(this.coordinator, this.o.tableName, this.o.create ?? [], this.o.citus);
      created = true;
    } else if (this.o.truncate) {
      await this.coordinator.query(`TRUNCATE ${table.sql}`);
    }
    // FREEZE: rows loaded into a table created or truncated in the same transaction can be written
    // frozen, sparing the later vacuum (not for partitioned tables, nor through Citus).
    this.freeze = (created || this.o.truncate) && table.kind === 'r' && table.citus === undefined && this.o.upsert === undefined;
    this.copyInto = table.sql;
    this.table = table;
    return { table, created };
  }

  private move: MoveHints | undefined;

  async ready(columns: readonly string[] | undefined, move: MoveHints): Promise<void> {
    this.move = move;
    const table = this.table as TableInfo;
    this.columns = [...(columns ?? table.columns.map((c) => c.name))];
    if (this.o.upsert === undefined) return;
    const cols = await stagingColumns(this.coordinator, table, this.columns, { notNull: true, positions: true, foldedBatch: false });
    await this.coordinator.query(`CREATE TEMP TABLE ${SingleConnection.TEMP} (${cols}) ON COMMIT DROP`);
    this.copyInto = SingleConnection.TEMP;
  }

  copySql(columns: string, options: string): string {
    return `COPY ${this.copyInto}${columns} FROM STDIN (${options}${this.freeze ? ', FREEZE' : ''})`;
  }

  private copyInto = '';

  feed(batches: AsyncIterable<B>): AsyncIterable<B> {
    return this.begun ? everyBatch(batches) : this.loneOrBegun(batches);
  }

  /** The batches, the transaction begun before the first unless it is the only one. */
  private async *loneOrBegun(batches: AsyncIterable<B>): AsyncIterable<B> {
    let first: B | undefined;
    for await (const batch of batches) {
      if (!this.begun && first === undefined) {
        first = batch;
        continue;
      }
      if (first !== undefined) {
        await this.begin();
        yield first;
        first = undefined;
      }
      yield batch;
    }
    if (first !== undefined) yield first;
  }

  async load(client: pg.Client, pid: number | undefined, batch: B, copySql: string): Promise<BatchOutcome> {
    if (this.o.upsert !== undefined) await client.query(`SET LOCAL dataio.batch = ${batchPosition(batch.file, batch.offset)}`);
    return loadBatch(client, pid, copySql, batch, this.o.ctx);
  }

  async finish(): Promise<Reject[]> {
    const u = this.o.upsert;
    let rejects: Reject[] = [];
    if (u !== undefined) {
      const table = this.table as TableInfo;
      const spec = { target: table.sql, staging: SingleConnection.TEMP, columns: this.columns, onConflict: u.onConflict, key: u.key };
      try {
        if (this.o.ctx.onError === 'skip') rejects = (await moveSkipping(this.coordinator, { ...(this.move as MoveHints), spec })).rejects;
        else this.upserted = await countedMove(this.coordinator, table, true, () => this.coordinator.query(moveSql(spec)));
      } catch (err) {
        throw moveFailure(err, { table: displayName(this.o.tableName), key: u.key, publishing: false });
      }
    }
    if (this.begun) await this.coordinator.query('COMMIT');
    return rejects;
  }

  async abort(_pool: CopyPool | undefined, _failure: DataioError): Promise<void> {
    // The table, the TRUNCATE and the rows go with the transaction (a lost connection rolls back by
    // itself); a lone COPY that failed left nothing.
    if (this.begun) await this.coordinator.query('ROLLBACK').catch(() => undefined);
  }

  async close(): Promise<void> {}
}
