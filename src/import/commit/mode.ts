/**
 * How an import makes its rows visible: one object per way, chosen once (choose.ts), so the job never
 * asks which way it is in. Each owns what its way needs: where batches are COPYed to, the transactions
 * on the pool's connections, what happens when every batch is in, and how a failure is undone.
 *
 *  - one connection ('single'): one transaction; atomic and crash-safe by itself.
 *  - two-phase commit: a transaction per connection, PREPAREd, a decision recorded, then committed.
 *  - staging: COPY in parallel into a staging table (a batch a transaction), then one transaction
 *    moves the rows into the table (INSERT … SELECT, an upsert's ON CONFLICT), or publishes the staging
 *    table itself as the table that --create makes.
 *  - resumable (--import-id): each batch commits with its ledger row, into the table or (upsert) into
 *    a staging table that is moved at the end.
 */
import type pg from 'pg';
import type { DataioError } from '../../errors.js';
import type { TableInfo } from '../../pg/catalog.js';
import type { BatchOutcome, LoadableBatch } from '../load/batch-load.js';
import type { CopyPool } from '../load/copy-pool.js';
import type { Reject } from '../load/rejects.js';
import type { MoveSkipping } from './move-skipping.js';
import type { UpsertCounts } from './upsert-counts.js';

/**
 * What a mode that moves staged rows needs: to set refused rows aside (--on-error skip), and on Citus
 * how many connections per node the move may use (as many as the load used).
 */
export type MoveHints = Omit<MoveSkipping, 'spec'> & { perNode: number };

export type ModeName = 'one connection' | 'two-phase commit' | 'staging' | 'resumable';

/** What prepare() settled: the table the input is matched against. */
export interface Prepared {
  /** The import's table (its columns decide how the input maps to them). */
  table: TableInfo;
  /** The table was made by this import (now, or by an earlier run of a resumable one). */
  created: boolean;
}

export interface CommitMode<B extends LoadableBatch = LoadableBatch> {
  readonly name: ModeName;
  /** 'import': one transaction per connection for the whole import; 'batch': one per batch. */
  readonly transactions: 'import' | 'batch';
  /** Run inside each connection's transaction when it opens ('import'). */
  readonly openSql: readonly string[];
  /** A row waiting on a row of another of our connections: fail, cancel it (skip), or nothing to fear. */
  readonly siblingWaits: 'fail' | 'cancel' | 'off';
  /** The batches may be COPYed through any node of a Citus cluster (not only the one we are connected to). */
  readonly fanOut: boolean;
  /**
   * A connection's batches may share one COPY (load/streamed-copy.ts): nothing of the mode's runs
   * between them ('import' transactions, and no statement per batch). With --on-error abort only.
   */
  readonly sharedCopy: boolean;
  /** Make what the load needs before the input is matched to the table (the table, a ledger row). */
  prepare(): Promise<Prepared>;
  /** The input sets these columns (undefined: all, in table order): make what the batches go into. */
  ready(columns: readonly string[] | undefined, move: MoveHints): Promise<void>;
  /** The COPY statement for a batch, from the input's column list (SQL, with parentheses) and COPY options. */
  copySql(columns: string, options: string): string;
  /** The batches to load, of all the input's (resumable: those not in and not held by another process). */
  feed(batches: AsyncIterable<B>, passed: (batch: B, rows: number, rejected: number) => void): AsyncIterable<B>;
  /** Load a batch on a pool connection (`pid`: its server backend, when known). */
  load(client: pg.Client, pid: number | undefined, batch: B, copySql: string): Promise<BatchOutcome>;
  /**
   * Every batch is in: make them visible. Resolves to the rows refused only then (--on-error skip
   * through a staging table: see move-skipping.ts), for the rejects file.
   */
  finish(pool: CopyPool): Promise<Reject[]>;
  /** After a failure: undo what this way undoes. `failure` is what went wrong. */
  abort(pool: CopyPool | undefined, failure: DataioError): Promise<void>;
  /** Stop background work (heartbeats); runs after finish() or abort(). */
  close(): Promise<void>;
  /** After finish(), an upsert that this process moved: what it did to the table, where that can be told (upsert-counts.ts). */
  readonly upserted?: UpsertCounts | undefined;
}

/** The staging position of a batch (the SET LOCAL its transaction starts with): see move-skipping.ts. */
export { batchPosition } from './move-skipping.js';

/** The feed of modes that load every batch. */
export async function* everyBatch<B extends LoadableBatch>(batches: AsyncIterable<B>): AsyncIterable<B> {
  yield* batches;
}
