/**
 * Parallel export of one table, consistent and in order.
 *
 * The lead connection opens a REPEATABLE READ transaction and exports its snapshot
 * (`pg_export_snapshot()`); every other connection imports it (`SET TRANSACTION SNAPSHOT`) before its
 * first query, so all of them see the table as of one instant, whatever is committed meanwhile. The
 * lead holds its transaction until the end and works on ranges too. The table is cut into ranges of
 * heap blocks (ranges.ts; TID range scans, PostgreSQL 14+), taken by whichever connection is free, and
 * written strictly in range order (ordered-copy.ts).
 */
import type pg from 'pg';
import { quoteLiteral } from '../pg/ident.js';
import type { RowTally } from './copy-out.js';
import type { RowShaper } from './copy-out-parser.js';
import { copyInOrder } from './ordered-copy.js';
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

/**
 * Begin a transaction that reads in one snapshot: a new one (exported by the caller) or an imported
 * one. A worker waiting for its turn is idle in it, so no idle timeout applies.
 */
export async function beginSnapshotTransaction(client: pg.Client, snapshot?: string, readOnly = true): Promise<void> {
  await client.query(`BEGIN ISOLATION LEVEL REPEATABLE READ${readOnly ? ' READ ONLY' : ''}`);
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
  const closeAll = () => Promise.all([lead, ...others].map((c) => c.end().catch(() => undefined))).then(() => undefined);
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
    const source = o.source;
    const parts = ranges.map((range, k) => ({ sql: exportCopySql(source, o.format, o.header && k === 0, range), lane: 0 }));
    const rows = await copyInOrder([[lead, ...others]], parts, o, consume, closeAll);
    return { rows, workers: 1 + others.length, ranges: ranges.length };
  } finally {
    await closeAll();
  }
}
