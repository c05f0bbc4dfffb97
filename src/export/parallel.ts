/**
 * Parallel export of one table, consistent and in order.
 *
 * The lead connection opens a REPEATABLE READ transaction and exports its snapshot
 * (`pg_export_snapshot()`); every other connection imports it (`SET TRANSACTION SNAPSHOT`) before its
 * first query, so all of them see the table as of one instant, whatever is committed meanwhile. The
 * lead holds its transaction until the end and works on ranges too. The table is cut into ranges of
 * heap blocks (ranges.ts; TID range scans, PostgreSQL 14+), taken by whichever connection is free, and
 * written strictly in range order. At most 2 × connections ranges are started but not yet written, and
 * each buffers at most `highWaterMark` bytes before its COPY waits (backpressure reaches the server),
 * so memory stays bounded whatever the table's size.
 */
import type pg from 'pg';
import { quoteLiteral } from '../pg/ident.js';
import { CopyOut, type RowTally } from './copy-out.js';
import type { RowShaper } from './copy-out-parser.js';
import { planRanges } from './ranges.js';
import { exportCopySql, type ExportFormat, type ExportSource } from './sql.js';

export interface RangeExportOptions {
  source: ExportSource;
  format: ExportFormat;
  header: boolean;
  workers: number;
  shaper: () => RowShaper;
  tally: RowTally;
  /** Bytes a range may buffer before its COPY waits. */
  highWaterMark: number;
  /** Largest range, in blocks (ranges.ts has the default). */
  maxRangeBlocks?: number;
  /** Open one more connection (the caller's target, application name and error mapping). */
  connect(): Promise<pg.Client>;
}

export interface RangeExportResult {
  rows: number;
  /** Connections used (the lead included). */
  workers: number;
  ranges: number;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/** Settings for every connection's transaction: a worker waiting for its turn is idle in it. */
async function beginSnapshotTransaction(client: pg.Client, snapshot?: string): Promise<void> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  if (snapshot !== undefined) await client.query(`SET TRANSACTION SNAPSHOT ${quoteLiteral(snapshot)}`);
  await client.query('SET LOCAL idle_in_transaction_session_timeout = 0');
}

/**
 * Export the table over `lead` and up to workers − 1 more connections; `consume` gets the bytes in
 * table order and must write them all (it runs the output pipeline). Takes over `lead`: every
 * connection is closed here, since a failed COPY left waiting for its reader ends only that way.
 */
export async function exportRanges(
  lead: pg.Client,
  o: RangeExportOptions,
  consume: (chunks: AsyncIterable<Buffer>) => Promise<void>,
): Promise<RangeExportResult> {
  const others: pg.Client[] = [];
  const settled: Promise<unknown>[] = [];
  try {
    if (o.source.kind !== 'table') throw new Error('exportRanges: only a table can be cut into ranges');
    await beginSnapshotTransaction(lead);
    const snap = await lead.query<{ snapshot: string; blocks: string }>(
      `SELECT pg_export_snapshot() AS snapshot,
              ceil(pg_relation_size($1::regclass) / current_setting('block_size')::numeric)::bigint AS blocks`,
      [o.source.sql],
    );
    const { snapshot, blocks } = snap.rows[0] as { snapshot: string; blocks: string };
    const ranges = planRanges(Number(blocks), o.workers, o.maxRangeBlocks);
    const count = Math.min(o.workers, ranges.length);
    await Promise.all(
      Array.from({ length: count - 1 }, async () => {
        const client = await o.connect();
        others.push(client);
        await beginSnapshotTransaction(client, snapshot);
      }),
    );
    const clients = [lead, ...others];
    const window = 2 * clients.length;
    const started = ranges.map(() => deferred<CopyOut>());
    const active = new Set<CopyOut>();
    const waiting: (() => void)[] = [];
    const wakeAll = () => waiting.splice(0).forEach((w) => w());
    let next = 0;
    let written = 0;
    let failure: Error | undefined;
    const fail = (err: unknown) => {
      failure ??= err instanceof Error ? err : new Error(String(err));
      for (const d of started) d.reject(failure);
      for (const c of active) c.destroy(failure);
      wakeAll();
    };

    const work = async (client: pg.Client) => {
      for (;;) {
        const k = next++;
        if (k >= ranges.length) return;
        while (k >= written + window && failure === undefined) await new Promise<void>((r) => waiting.push(r));
        if (failure !== undefined) return;
        const copy = new CopyOut(exportCopySql(o.source, o.format, o.header && k === 0, ranges[k]), o.shaper(), o.tally, o.highWaterMark);
        // Its failure may come before the writer reads it: the writer gets it from the stream's state
        // and from `finished`, so an 'error' event with no one listening must not crash the process.
        copy.on('error', () => undefined);
        active.add(copy);
        client.query(copy);
        (started[k] as Deferred<CopyOut>).resolve(copy);
        try {
          // The connection is free for the next range once the server has sent the whole range.
          await copy.finished;
        } finally {
          active.delete(copy);
        }
      }
    };
    for (const c of clients) settled.push(work(c).catch(fail));

    let rows = 0;
    async function* inOrder(): AsyncGenerator<Buffer> {
      for (const d of started) {
        const copy = await d.promise;
        yield* copy;
        rows += await copy.finished;
        written++;
        wakeAll();
      }
    }
    try {
      await consume(inOrder());
    } catch (err) {
      fail(err);
      throw failure;
    }
    return { rows, workers: clients.length, ranges: ranges.length };
  } finally {
    // Closing a connection whose COPY still runs (a failure, a reader gone) cuts it off at the server.
    await Promise.all([lead, ...others].map((c) => c.end().catch(() => undefined)));
    await Promise.allSettled(settled);
  }
}
