/**
 * Loading one batch on one connection, in each error mode:
 *  - abort (default): one COPY; any error fails the import.
 *  - skip: the COPY runs in a savepoint; when the server refuses a row, the batch is loaded again
 *    without it (see skip.ts) and the refused records become rejects.
 * and, for a resumable import, inside the batch's own transaction with its ledger row.
 */
import type pg from 'pg';
import { isPgError, parseCopyWhere } from '../pg/pg-errors.js';
import { backendPid, copyChunks, type CopyWorkerBatch } from './copy-pool.js';
import { batchEntry, digestOf, recordBatch, type BatchEntry } from './ledger.js';
import { rejectOf, type Reject } from './rejects.js';
import { loadSkipping, type RecordSet, type RowFailure } from './skip.js';

export interface LoadableBatch extends CopyWorkerBatch {
  /** 0-based sequence number. */
  index: number;
  /** Byte offset of the batch's first record in the (decompressed) input. */
  offset: number;
  /** Bytes of COPY input. */
  bytes: number;
  /** Records refused before the server saw the batch (JSON that could not become a row), in order. */
  preRejects?: Reject[];
  /** Called once the batch is loaded and will never be read again (its read buffers can be reused). */
  release?: () => void;
}

/** A batch's records, for loading it again without its bad ones and for the rejects file. */
export interface BatchRecords extends RecordSet {
  /** Where record i was in the input, and its bytes there. */
  rejectAt(i: number): { line: number; offset: number; raw: Buffer };
}

export interface BatchOutcome {
  rows: number;
  rejects: Reject[];
  /** Resumable: the batch turned out to be in already (a lost commit reply); its ledger entry. */
  already?: BatchEntry;
}

export interface BatchLoadContext<B extends LoadableBatch> {
  copySql: string;
  onError: 'abort' | 'skip';
  records(batch: B): BatchRecords;
  /** Backends the sibling-wait watcher cancelled: their "canceling statement" is a row error. */
  cancelled: Set<number>;
}

const SAVEPOINT = 'dataio_batch';

/**
 * A row error, which skip mode rejects: a bad value (class 22), a constraint (class 23), or a row the
 * watcher cancelled because it waited on a row another worker of this import loaded.
 */
export function rowFailureOf(err: unknown, cancelled: Set<number>, pid: number): RowFailure | undefined {
  if (!isPgError(err)) return undefined;
  const code = err.code ?? '';
  const row = code.startsWith('22') || code.startsWith('23') || (code === '57014' && cancelled.delete(pid));
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
    await client.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`);
    await client.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
    throw err;
  }
}

/** Load a batch inside the connection's open transaction. */
export async function loadBatch<B extends LoadableBatch>(client: pg.Client, batch: B, ctx: BatchLoadContext<B>): Promise<BatchOutcome> {
  const pre = batch.preRejects ?? [];
  if (ctx.onError === 'abort') return { rows: await copyChunks(client, ctx.copySql, batch.chunks), rejects: pre };
  const pid = backendPid(client);
  // Asked more than once about one error: the answer must not change (a cancel is noted only once).
  const answers = new WeakMap<object, RowFailure | undefined>();
  const rowFailure = (err: unknown): RowFailure | undefined => {
    if (!(err instanceof Object)) return undefined;
    if (!answers.has(err)) answers.set(err, rowFailureOf(err, ctx.cancelled, pid));
    return answers.get(err);
  };
  let failed: unknown;
  try {
    return { rows: await copyInSavepoint(client, ctx.copySql, batch.chunks), rejects: pre };
  } catch (err) {
    if (rowFailure(err) === undefined) throw err;
    failed = err;
  }
  const set = ctx.records(batch);
  const r = await loadSkipping(set, (a, b) => copyInSavepoint(client, ctx.copySql, set.copyInput(a, b)), rowFailure, failed);
  const found = r.rejected.map(({ index, err }) => rejectOf(err, set.rejectAt(index)));
  const rejects = pre.length === 0 ? found : [...pre, ...found].sort((x, y) => x.offset - y.offset);
  return { rows: r.rows, rejects };
}

/**
 * Resumable: load a batch in its own transaction together with its ledger row, so that it is in
 * exactly when its ledger row is. A batch found in the ledger already (its commit went through but
 * the reply was lost) is not loaded again.
 */
export async function loadBatchResumable<B extends LoadableBatch>(client: pg.Client, batch: B, ctx: BatchLoadContext<B>, importId: string): Promise<BatchOutcome> {
  await client.query('BEGIN');
  try {
    const prior = await batchEntry(client, importId, batch.offset);
    if (prior !== undefined) {
      await client.query('COMMIT');
      return { rows: 0, rejects: [], already: prior };
    }
    const out = await loadBatch(client, batch, ctx);
    await recordBatch(client, importId, batch.offset, { bytes: batch.bytes, digest: digestOf(batch.chunks), rows: out.rows, rejected: out.rejects.length }, out.rejects);
    await client.query('COMMIT');
    return out;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
