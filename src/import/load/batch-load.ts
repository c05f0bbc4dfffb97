/**
 * Loading one batch on one connection, inside the transaction the commit mode keeps there:
 *  - abort (default): one COPY; any error fails the import.
 *  - skip: the COPY runs in a savepoint; when the server refuses a row, the batch is loaded again
 *    without it (see skip.ts) and the refused records become rejects.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { isPgError, parseCopyWhere } from '../../pg/pg-errors.js';
import type { CopyWorkerBatch } from './copy-pool.js';
import { rejectOf, type Reject } from './rejects.js';
import type { BatchRecords } from '../cut/records.js';
import { loadSkipping, type RowFailure } from './skip.js';

export interface LoadableBatch extends CopyWorkerBatch {
  /** 0-based sequence number over the whole import. */
  index: number;
  /** Which input file (0-based) the batch comes from. */
  file: number;
  /** Byte offset of the batch's first record in its (decompressed) input file. */
  offset: number;
  /** Byte offset just after the batch in its file. */
  endOffset: number;
  /** Bytes of COPY input. */
  bytes: number;
  /** Records refused before the server saw the batch (JSON that could not become a row), in order. */
  preRejects?: Reject[];
  /** Called once the batch is loaded and will never be read again (its read buffers can be reused). */
  release?: () => void;
}

export type { BatchRecords } from '../cut/records.js';

export interface BatchOutcome {
  rows: number;
  rejects: Reject[];
  /** Resumable: the batch turned out to be in already (a lost commit reply); its rows and rejects then. */
  already?: { rows: number; rejected: number };
}

export interface BatchLoadContext<B extends LoadableBatch> {
  onError: 'abort' | 'skip';
  records(batch: B): BatchRecords;
  /** Backends the sibling-wait watcher cancelled: their "canceling statement" is a row error. */
  cancelled: Set<number>;
}

/** COPY `chunks` into the table with `sql` on `client`; resolves to the rows loaded. */
export async function copyChunks(client: pg.Client, sql: string, chunks: readonly Buffer[]): Promise<number> {
  const stream = client.query(copyFrom(sql));
  // pipeline: an error on either side destroys the copy stream, which sends CopyFail.
  await pipeline(Readable.from(chunks, { objectMode: false }), stream);
  return stream.rowCount;
}

const SAVEPOINT = 'dataio_batch';

/**
 * A row error, which skip mode rejects: a bad value (class 22), a constraint (class 23), or a row the
 * watcher cancelled because it waited on a row another worker of this import loaded.
 */
export function rowFailureOf(err: unknown, cancelled: Set<number>, pid: number | undefined): RowFailure | undefined {
  if (!isPgError(err)) return undefined;
  const code = err.code ?? '';
  const row = code.startsWith('22') || code.startsWith('23') || (code === '57014' && pid !== undefined && cancelled.delete(pid));
  return row ? { serverLine: parseCopyWhere(err.where).line } : undefined;
}

/** COPY records in a savepoint: on failure the savepoint is rolled back and the error rethrown. */
async function copyInSavepoint(client: pg.Client, sql: string, chunks: readonly Buffer[]): Promise<number> {
  await client.query(`SAVEPOINT ${SAVEPOINT}`);
  try {
    const rows = await copyChunks(client, sql, chunks);
    await client.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
    return rows;
  } catch (err) {
    await client.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}; RELEASE SAVEPOINT ${SAVEPOINT}`);
    throw err;
  }
}

/**
 * Load a batch with `copySql` inside the connection's open transaction. `pid` is the server backend
 * of that transaction, when known (the wait watcher cancels by it).
 */
export async function loadBatch<B extends LoadableBatch>(client: pg.Client, pid: number | undefined, copySql: string, batch: B, ctx: BatchLoadContext<B>): Promise<BatchOutcome> {
  const pre = batch.preRejects ?? [];
  if (ctx.onError === 'abort') return { rows: await copyChunks(client, copySql, batch.chunks), rejects: pre };
  // Asked more than once about one error: the answer must not change (a cancel is noted only once).
  const answers = new WeakMap<object, RowFailure | undefined>();
  const rowFailure = (err: unknown): RowFailure | undefined => {
    if (!(err instanceof Object)) return undefined;
    if (!answers.has(err)) answers.set(err, rowFailureOf(err, ctx.cancelled, pid));
    return answers.get(err);
  };
  let failed: unknown;
  try {
    return { rows: await copyInSavepoint(client, copySql, batch.chunks), rejects: pre };
  } catch (err) {
    if (rowFailure(err) === undefined) throw err;
    failed = err;
  }
  const set = ctx.records(batch);
  const r = await loadSkipping(set, (a, b) => copyInSavepoint(client, copySql, set.copyInput(a, b)), rowFailure, failed);
  const found = r.rejected.map(({ index, err }) => rejectOf(err, set.rejectAt(index)));
  const rejects = pre.length === 0 ? found : [...pre, ...found].sort((x, y) => x.offset - y.offset);
  return { rows: r.rows, rejects };
}
