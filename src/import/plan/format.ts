/**
 * What an input format gives the job: first the columns a new table would get (read from the start of
 * the first input), then, once the table is known, how the inputs become batches and how a batch's
 * records, errors and progress are told.
 */
import type pg from 'pg';
import type { DataioError } from '../../errors.js';
import type { TableInfo } from '../../pg/catalog.js';
import type { BatchRecords, LoadableBatch } from '../load/batch-load.js';
import type { RejectsAs, RejectsLayout } from '../load/rejects.js';
import type { StreamLines } from '../load/streamed-copy.js';
import type { ColumnDef } from './table.js';

export interface Format<B extends LoadableBatch> {
  /** Read the start of the first input; with `create`, the columns (and types) a new table would get. */
  shape(create: boolean): Promise<ColumnDef[] | undefined>;
  /** The table is known: how to load it (into a server of this server_version_num). */
  bind(client: pg.Client, table: TableInfo, created: boolean, serverVersion: number): Promise<Loader<B>>;
  /** Close what is still open (an import that failed while reading). */
  close(): Promise<void>;
}

export interface Loader<B extends LoadableBatch> {
  /** The columns the input sets, in its order (undefined: every column of the table, in order). */
  columns: string[] | undefined;
  /** COPY options (FORMAT csv, DELIMITER …) without the parentheses. */
  copyOptions: string;
  /**
   * Every input file as batches of whole records, in order. `pass` 0 goes on from where shape() read;
   * a later pass reads the inputs again from their start (a resumable import taking over batches).
   * `joinFiles`: a batch may hold the ends of several small files (not in skip mode, which takes a
   * failed batch apart record by record); a format may ignore it. `ramp`: the first batches smaller
   * (rampedBatchSize in workers.ts), so that loading begins sooner; a format may ignore it.
   */
  batches(batchSize: number, pass: number, joinFiles: boolean, ramp: boolean): AsyncIterable<B>;
  /** A batch's records one by one (skip mode, when a batch failed). */
  records(batch: B): BatchRecords;
  /** How the rejects file is laid out (the first input's header, framing). */
  rejectsLayout: RejectsLayout;
  /** How a staged row refused only when moved is written back as a record (move-skipping.ts). */
  rejectsAs: RejectsAs;
  /** A batch's failure as the one line the user sees (naming the input line). */
  mapError(err: unknown, batch: B): DataioError;
  /** How far into the inputs a loaded batch ends, in bytes comparable with the inputs' total size. */
  progressBytes(batch: B): number;
  /**
   * How a batch goes into a COPY that other batches share (load/streamed-copy.ts): the lines it holds,
   * whether it ends at a line end, which batches it may share one with; undefined: it needs a COPY of
   * its own. A format without it loads every batch with a COPY of its own.
   */
  streamLines?(batch: B): StreamLines | undefined;
}
