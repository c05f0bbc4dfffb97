/**
 * Resumable imports (--import-id): each batch commits on its own, with its ledger row turning `done`
 * in the same transaction (ledger.ts), so whatever stops the import, the same command loads exactly
 * what is missing. Several processes given the same id share the work: each claims batches before
 * loading them, and a batch claimed by a process that died is taken over once its lease is over.
 *
 * With an upsert the batches go into a staging table that outlives the runs (logged, its name in the
 * import's ledger row), and the last process to find every batch in moves it into the table in one
 * transaction together with marking the import finished: the move happens once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { DataioError } from '../../errors.js';
import type { TableInfo } from '../../pg/catalog.js';
import { SCHEMA, STAGING_PREFIX } from '../../pg/dataio-schema.js';
import { displayName, quoteIdent, type TableName } from '../../pg/ident.js';
import { Heartbeat, type Holder } from '../../pg/lease.js';
import { loadBatch, type BatchLoadContext, type BatchOutcome, type LoadableBatch } from '../load/batch-load.js';
import type { Reject } from '../load/rejects.js';
import type { OnConflict } from '../options.js';
import { createTable, findTable, type ColumnDef } from '../plan/table.js';
import { Alignment, digestOf, finishImport, insertImport, Ledger, readImport, type ImportRecord } from './ledger.js';
import { batchPosition, type CommitMode, type MoveHints, type Prepared } from './mode.js';
import { moveSkipping } from './move-skipping.js';
import { moveFailure, moveSql } from './move.js';
import { countedMove, type UpsertCounts } from './upsert-counts.js';
import { batchBegin, STAGING_STORAGE, stagingColumns } from './staging.js';

export interface ResumableOptions<B extends LoadableBatch> {
  coordinator: pg.Client;
  holder: Holder;
  id: string;
  /** The options that decide what is loaded (recorded the first time, compared on every rerun). */
  options: Record<string, unknown>;
  inputs: { name: string; size: number | null }[];
  batchSize: number;
  tableName: TableName;
  /** The ledger's record from before this run, if any (see the job). */
  record: ImportRecord | undefined;
  create: ColumnDef[] | undefined;
  truncate: boolean;
  onConflict: OnConflict;
  key: string[] | undefined;
  citus: boolean;
  ctx: BatchLoadContext<B>;
  /** For messages: the input file's name when there are several, else ''. */
  fileName(file: number): string;
  signal?: AbortSignal | undefined;
  /** The input can be read again from its start (to take over batches of a process that died). */
  reopenable: boolean;
  /** Waiting for batches other processes hold. */
  waiting(message: string): void;
}

export class Resumable<B extends LoadableBatch> implements CommitMode<B> {
  readonly name = 'resumable' as const;
  readonly transactions = 'batch' as const;
  readonly openSql: readonly string[] = [];
  readonly siblingWaits = 'off' as const;
  readonly sharedCopy = false;
  fanOut = false;
  readonly ledger: Ledger;
  private readonly o: ResumableOptions<B>;
  private table: TableInfo | undefined;
  private staging: string | null = null;
  upserted: UpsertCounts | undefined;
  private columns: string[] = [];
  private heartbeat: Heartbeat | undefined;
  private alignment: Alignment | undefined;
  /** Batches whose load failed once: a retry first asks the ledger (the commit may have gone through). */
  private readonly retried = new Set<string>();
  private readonly batchSql: string;
  /** This process's rows: loaded, and found in by a retry. */
  finishedRows = 0;

  constructor(o: ResumableOptions<B>) {
    this.o = o;
    this.ledger = new Ledger(o.coordinator, o.id, o.holder, o.fileName);
    this.batchSql = batchBegin(o.citus);
  }

  private get upsert(): boolean {
    return this.o.onConflict !== 'error';
  }

  async prepare(): Promise<Prepared> {
    const c = this.o.coordinator;
    let record = this.o.record;
    let created = record?.created === true;
    if (record === undefined) {
      // The import's row, the table --create makes and the TRUNCATE commit together. The row goes in
      // first: a second process starting the same id at the same moment waits on it, then joins.
      await c.query('BEGIN');
      try {
        const staging = this.upsert ? `${STAGING_PREFIX}${this.o.holder.owner}` : null;
        const mine = await insertImport(c, this.o.id, { table: this.o.tableName.name, options: this.o.options, inputs: this.o.inputs, batchSize: this.o.batchSize, created: this.o.create !== undefined, staging });
        if (mine) {
          if (this.o.create !== undefined) {
            this.table = await createTable(c, this.o.tableName, this.o.create, this.o.citus);
            created = true;
          } else {
            this.table = await findTable(c, this.o.tableName, { create: false, resuming: false, ours: false, citus: this.o.citus });
            if (this.o.truncate && this.table !== undefined) await c.query(`TRUNCATE ${this.table.sql}`);
          }
          await c.query('COMMIT');
          this.staging = staging;
        } else {
          await c.query('ROLLBACK');
          record = await readImport(c, this.o.id);
        }
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    }
    if (record !== undefined) {
      this.staging = record.staging;
      created = record.created;
      this.table = await findTable(c, this.o.tableName, { create: this.o.create !== undefined, resuming: true, ours: record.created, citus: this.o.citus });
    }
    const table = this.table as TableInfo;
    // Through any node: a distributed table, with the ledger distributed alike (ledger.ts).
    this.fanOut = this.o.citus && table.citus?.kind === 'distributed' && this.staging === null;
    this.heartbeat = new Heartbeat(() => this.ledger.renew()).start();
    return { table, created };
  }

  private get stagingSql(): string {
    return `${SCHEMA}.${quoteIdent(this.staging ?? '')}`;
  }

  private move: MoveHints | undefined;

  async ready(columns: readonly string[] | undefined, move: MoveHints): Promise<void> {
    this.move = move;
    const table = this.table as TableInfo;
    this.columns = [...(columns ?? table.columns.map((x) => x.name))];
    if (this.staging === null) return;
    // The upsert's staging table: logged (its batches must survive a crash, as their ledger rows do).
    const c = this.o.coordinator;
    const cols = await stagingColumns(c, table, this.columns, { notNull: true, positions: true, foldedBatch: !this.o.citus });
    await c.query(`CREATE TABLE IF NOT EXISTS ${this.stagingSql} (${cols}) ${STAGING_STORAGE}`);
  }

  copySql(columns: string, options: string): string {
    return `COPY ${this.staging === null ? (this.table as TableInfo).sql : this.stagingSql}${columns} FROM STDIN (${options})`;
  }

  private keyOf(batch: B): string {
    return `${batch.file}:${batch.offset}`;
  }

  async *feed(batches: AsyncIterable<B>, passed: (batch: B, rows: number, rejected: number) => void): AsyncIterable<B> {
    this.alignment = await Alignment.read(this.o.coordinator, this.o.id, (k) => this.ledger.where(k));
    for await (const batch of batches) {
      this.alignment.check(batch);
      const claim = await this.ledger.claim(batch, { bytes: batch.bytes, digest: digestOf(batch.chunks), firstLine: batch.firstLine });
      if (claim.kind === 'ours') {
        yield batch;
        continue;
      }
      // In already (an earlier run, another process), or another live process loads it now.
      passed(batch, claim.kind === 'done' && claim.mine ? claim.entry.rows : 0, claim.kind === 'done' && claim.mine ? claim.entry.rejected : 0);
      batch.release?.();
    }
    this.alignment.finish();
  }

  async load(client: pg.Client, pid: number | undefined, batch: B, copySql: string): Promise<BatchOutcome> {
    const key = this.keyOf(batch);
    if (this.retried.has(key)) {
      // Its commit may have gone through with the reply lost: the ledger knows.
      const claim = await this.ledger.claim(batch, { bytes: batch.bytes, digest: digestOf(batch.chunks), firstLine: batch.firstLine });
      if (claim.kind === 'done') return { rows: 0, rejects: [], already: claim.mine ? { rows: claim.entry.rows, rejected: claim.entry.rejected } : { rows: 0, rejected: 0 } };
      if (claim.kind === 'held') return { rows: 0, rejects: [], already: { rows: 0, rejected: 0 } };
    }
    await client.query(this.staging === null ? this.batchSql : `${this.batchSql}; SET LOCAL dataio.batch = ${batchPosition(batch.file, batch.offset)}`);
    try {
      const out = await loadBatch(client, pid, copySql, batch, this.o.ctx);
      if (!(await this.ledger.complete(client, batch, out.rows, out.rejects))) {
        // Another process took the batch over (our lease lapsed): it counts it, we roll ours back.
        await client.query('ROLLBACK');
        return { rows: 0, rejects: [], already: { rows: 0, rejected: 0 } };
      }
      await client.query('COMMIT');
      return out;
    } catch (err) {
      this.retried.add(key);
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  /**
   * After a pass over the input: 'complete' when every batch is in; 'again' when a batch that another
   * process claimed needs loading (its process stopped), which means reading the input once more.
   * Meanwhile it waits for the batches other live processes hold.
   */
  async remaining(): Promise<'complete' | 'again'> {
    for (let waited = 0; ; waited++) {
      const st = await this.ledger.status();
      if (st.claimed === 0) return 'complete';
      if ((await this.ledger.lapsedClaims()) > 0) {
        if (this.o.reopenable) return 'again';
        throw new DataioError('IMPORT_STATE', `${st.claimed} batches of import ${JSON.stringify(this.o.id)} were claimed by a dataio process that stopped before it loaded them, and stdin cannot be read twice`, {
          hint: 'run the same command again (with the same input) to load them, exactly once',
        });
      }
      if (waited % 10 === 0) this.o.waiting(`waiting for ${st.claimed} ${st.claimed === 1 ? 'batch' : 'batches'} that another dataio process is loading for import ${JSON.stringify(this.o.id)}`);
      if (this.o.signal?.aborted) throw new DataioError('INTERRUPTED', `import ${JSON.stringify(this.o.id)} interrupted`);
      await sleep(1000);
    }
  }

  /**
   * Every batch is in: mark the import finished. With an upsert, the staging table is moved into the
   * table in the same transaction, by whichever process marks it finished (another one doing the same
   * waits on the row, then finds it finished); rows refused then (--on-error skip) go into the ledger
   * with it, so the rejects file written from the ledger has them, once.
   */
  async finish(): Promise<Reject[]> {
    await this.heartbeat?.stop();
    const c = this.o.coordinator;
    await c.query('BEGIN; SET LOCAL synchronous_commit = on');
    try {
      if ((await finishImport(c, this.o.id)) && this.staging !== null) {
        const table = this.table as TableInfo;
        const spec = { target: table.sql, staging: this.stagingSql, columns: this.columns, onConflict: this.o.onConflict, key: this.o.key };
        if (this.o.ctx.onError === 'skip') {
          const { rejects } = await moveSkipping(c, { ...(this.move as MoveHints), spec });
          await this.ledger.movedRejects(c, rejects);
        } else {
          this.upserted = await countedMove(c, table, true, () => c.query(moveSql(spec)));
        }
        await c.query(`DROP TABLE ${this.stagingSql}`);
      }
      await c.query('COMMIT');
      return [];
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw moveFailure(err, { table: displayName(this.o.tableName), key: this.o.key, publishing: false });
    }
  }

  async abort(): Promise<void> {
    await this.heartbeat?.stop();
    // Give up this process's claims, so another process (or the rerun) takes them at once.
    await this.ledger.release().catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.heartbeat?.stop();
  }

  /** Every reject of the import (all runs, all processes), from the ledger. */
  rejects(): AsyncGenerator<Reject[]> {
    return this.ledger.rejects();
  }
}
