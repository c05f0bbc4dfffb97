/**
 * CSV / text-format import: the fast path. The input is cut into batches of whole records by a
 * quote-aware byte scan and each batch's raw bytes go to `COPY … FROM STDIN` on a bounded pool of
 * connections; PostgreSQL parses and checks every value. All or nothing: every connection keeps one
 * transaction, committed only when every batch is in.
 */
import type pg from 'pg';
import { DataioError, usage } from '../errors.js';
import { ChunkReader, openInput, type InputSource } from '../io/input.js';
import { connectClient, type ConnectionTarget } from '../pg/connect.js';
import { lookupTable, type TableInfo } from '../pg/catalog.js';
import { displayName, parseTableName, qualifiedName, quoteIdent, quoteLiteral, type TableName } from '../pg/ident.js';
import { mapQueryError } from '../pg/pg-errors.js';
import type { Progress } from '../progress/progress.js';
import { Batcher, type Batch } from './batcher.js';
import { CopyPool } from './copy-pool.js';
import { inferTypes } from './infer.js';
import { readPrologue, type DelimitedFormat, type Prologue } from './prologue.js';
import { loadBatches } from './engine.js';
import { csvDialect, makeScanner, TEXT_DIALECT } from './scanner.js';

export interface DelimitedImportOptions {
  input: string;
  table: string;
  format: 'csv' | 'text';
  delimiter?: string | undefined;
  quote?: string | undefined;
  escape?: string | undefined;
  nullString?: string | undefined;
  header: boolean;
  columns?: string[] | undefined;
  create: boolean;
  truncate: boolean;
  encoding?: string | undefined;
  workers: number;
  batchSize: number;
  sampleRows: number;
}

export interface ImportResult {
  table: string;
  rows: number;
  /** Decompressed input bytes. */
  bytes: number;
  batches: number;
  workers: number;
  seconds: number;
  created: boolean;
}

export interface ImportHooks {
  progress(total: number | undefined): Progress;
  warn(message: string): void;
}

/** Keep memory at O(workers × batch size) and never above this many bytes of batches in flight. */
const MAX_IN_FLIGHT_BYTES = 192 * 1024 * 1024;

export function delimitedFormat(o: DelimitedImportOptions): DelimitedFormat {
  const delimiter = o.delimiter ?? (o.format === 'text' ? '\t' : ',');
  if (Buffer.byteLength(delimiter) !== 1) throw usage(`--delimiter must be a single one-byte character, not ${JSON.stringify(delimiter)}`);
  if (o.format === 'text') {
    if (o.quote !== undefined || o.escape !== undefined) throw usage('--quote and --escape apply to CSV, not to tsv (PostgreSQL text format)');
    return { kind: 'text', delimiter, dialect: TEXT_DIALECT, nullString: o.nullString ?? '\\N', quote: '', escape: '\\' };
  }
  const quote = o.quote ?? '"';
  const escape = o.escape ?? quote;
  let dialect;
  try {
    dialect = csvDialect(quote, escape);
  } catch (err) {
    throw usage((err as Error).message);
  }
  if (delimiter === quote) throw usage('--delimiter and --quote must differ');
  return { kind: 'csv', delimiter, dialect, nullString: o.nullString ?? '', quote, escape };
}

export function copyOptionsSql(fmt: DelimitedFormat, encoding: string | undefined): string {
  const opts = [`FORMAT ${fmt.kind}`, `DELIMITER ${quoteLiteral(fmt.delimiter)}`, `NULL ${quoteLiteral(fmt.nullString)}`];
  if (fmt.kind === 'csv') opts.push(`QUOTE ${quoteLiteral(fmt.quote)}`, `ESCAPE ${quoteLiteral(fmt.escape)}`);
  if (encoding !== undefined) opts.push(`ENCODING ${quoteLiteral(encoding)}`);
  return opts.join(', ');
}

/** Match header names to table columns: exact first, then case-insensitive when unambiguous. */
export function matchColumns(header: readonly string[], table: TableInfo): string[] {
  const names = table.columns.map((c) => c.name);
  const seen = new Set<string>();
  return header.map((h) => {
    let match = names.find((n) => n === h);
    if (match === undefined) {
      const ci = names.filter((n) => n.toLowerCase() === h.toLowerCase());
      if (ci.length === 1) match = ci[0];
    }
    if (match === undefined) {
      throw new DataioError('COLUMN_NOT_FOUND', `the input column "${h}" is not a column of ${table.display}`, {
        hint: `the table has: ${names.slice(0, 20).join(', ')}${names.length > 20 ? ', …' : ''} (use --columns to name the columns yourself)`,
      });
    }
    if (seen.has(match)) throw new DataioError('INPUT_FORMAT', `the input names the column "${h}" twice`);
    seen.add(match);
    return match;
  });
}

function createTableSql(t: TableName, names: string[], types: string[]): string {
  const cols = names.map((n, i) => `${quoteIdent(n)} ${types[i]}`).join(', ');
  return `CREATE TABLE ${qualifiedName(t)} (${cols})`;
}

async function freeConnections(client: pg.Client): Promise<number> {
  const r = await client.query<{ free: number }>(
    `SELECT current_setting('max_connections')::int
            - current_setting('superuser_reserved_connections')::int
            - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int AS free`,
  );
  return r.rows[0]?.free ?? 0;
}

/** How many workers to use: no more than the server has connections free (keeping one spare). */
async function chooseWorkers(client: pg.Client, o: DelimitedImportOptions, warn: (m: string) => void): Promise<number> {
  let workers = o.workers;
  const free = await freeConnections(client);
  if (free - 1 < workers) {
    const reduced = Math.max(1, free - 1);
    if (reduced < workers) warn(`the server has ${free} free connections: using ${reduced} workers instead of ${workers}`);
    workers = reduced;
  }
  if (o.truncate && workers > 1) {
    // TRUNCATE takes a lock that admits no other writer until commit, and it must share the load's
    // transaction so that a failed import leaves the old rows in place: one connection, then.
    warn('--truncate loads over one connection (TRUNCATE locks out other writers until the commit)');
    workers = 1;
  }
  return workers;
}

interface PreparedTable {
  table: TableInfo;
  copySql: string;
  created: boolean;
}

/** Find (or, with --create, make) the table and build the COPY statement for the input's columns. */
async function prepareTable(client: pg.Client, tableName: TableName, o: DelimitedImportOptions, fmt: DelimitedFormat, prologue: Prologue): Promise<PreparedTable> {
  let table = await lookupTable(client, tableName);
  let copyColumns: string[] | undefined;
  let created = false;
  if (o.create) {
    if (table) {
      throw new DataioError('TABLE_EXISTS', `table ${table.display} already exists`, {
        hint: 'drop --create to load into it, or choose another --table',
      });
    }
    const names = o.columns ?? prologue.header ?? [];
    names.forEach((n, i) => {
      if (n === '') throw new DataioError('INPUT_FORMAT', `header column ${i + 1} has no name`, { hint: 'name it, or pass --columns' });
    });
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup !== undefined) throw new DataioError('INPUT_FORMAT', `the header names the column "${dup}" twice`, { hint: 'rename one, or pass --columns' });
    const types = inferTypes(names.length, prologue.sample);
    try {
      await client.query(createTableSql(tableName, names, types));
    } catch (err) {
      throw mapQueryError(err, { action: `create table ${displayName(tableName)}` });
    }
    created = true;
    table = await lookupTable(client, tableName);
    copyColumns = names;
  }
  if (!table) {
    throw new DataioError('TABLE_NOT_FOUND', `table ${displayName(tableName)} does not exist`, {
      hint: 'check the name (schema.table), or pass --create to make it from the input',
    });
  }
  if (!o.create) {
    const given = o.columns ?? prologue.header;
    if (given !== undefined) copyColumns = matchColumns(given, table);
  }
  const columnSql = copyColumns === undefined ? '' : ` (${copyColumns.map(quoteIdent).join(', ')})`;
  // FREEZE: rows loaded into a table truncated in the same transaction can be written frozen,
  // sparing the later vacuum (not allowed for partitioned tables).
  const freeze = o.truncate && table.kind === 'r' ? ', FREEZE' : '';
  return { table, created, copySql: `COPY ${table.sql}${columnSql} FROM STDIN (${copyOptionsSql(fmt, o.encoding)}${freeze})` };
}

/** The input after its prologue, as batches of whole records. */
async function* batchesOf(reader: ChunkReader, fmt: DelimitedFormat, prologue: Prologue, batchSize: number): AsyncGenerator<Batch> {
  if (prologue.empty) return;
  const batcher = new Batcher({
    batchSize,
    scanner: makeScanner(fmt.dialect, prologue.eol ?? 'lf'),
    eol: prologue.eol,
    startOffset: prologue.dataOffset,
    startLine: prologue.dataLine,
  });
  for await (const chunk of reader) yield* batcher.push(chunk);
  const last = batcher.end();
  if (last) yield last;
}

export async function importDelimited(target: ConnectionTarget, o: DelimitedImportOptions, hooks: ImportHooks): Promise<ImportResult> {
  const fmt = delimitedFormat(o);
  if (!o.header && o.columns === undefined && o.create) {
    throw usage('--create needs column names: give the input a header, or pass --columns');
  }
  const tableName = parseTableName(o.table);
  const action = `import into ${displayName(tableName)}`;
  const started = Date.now();
  const input: InputSource = await openInput(o.input);
  const reader = new ChunkReader(input.chunks);
  let coordinator: pg.Client | undefined;
  let pool: CopyPool | undefined;
  let prepared: PreparedTable | undefined;
  let progress: Progress | undefined;
  try {
    const prologue = await readPrologue(reader, fmt, {
      header: o.header,
      sampleRows: o.create ? o.sampleRows : 0,
      stripBom: o.encoding === undefined || /^utf-?8$/i.test(o.encoding),
    });
    coordinator = await connectClient(target, 'dataio import');
    prepared = await prepareTable(coordinator, tableName, o, fmt, prologue);
    const { table, copySql } = prepared;
    const workers = await chooseWorkers(coordinator, o, hooks.warn);
    pool = new CopyPool({
      target,
      maxWorkers: workers,
      copySql,
      warn: hooks.warn,
      ...(o.truncate ? { sessionSql: [`TRUNCATE ${table.sql}`] } : {}),
    });
    const activeProgress = hooks.progress(input.size);
    progress = activeProgress;
    let rows = 0;
    let bytes = 0;
    let batches = 0;
    await loadBatches(batchesOf(reader, fmt, prologue, o.batchSize), {
      pool,
      workers,
      maxInFlight: Math.max(2, Math.min(2 * workers, Math.floor(MAX_IN_FLIGHT_BYTES / Math.max(o.batchSize, 1)))),
      monitor: coordinator,
      action,
      onLoaded: (batch, n) => {
        rows += n;
        bytes += batch.bytes;
        batches++;
        // Loaded bytes, not read ones (reading runs ahead by the batches in flight); for gzip only the
        // compressed bytes read compare with the file's size.
        activeProgress.update({ bytes: input.gzip && input.size !== undefined ? input.rawBytesRead() : prologue.dataOffset + bytes, rows });
      },
      mapError: (err, batch) =>
        mapQueryError(err, {
          action,
          // PostgreSQL's "line N" counts physical lines, newlines inside quoted fields included
          // (CopyReadLineText bumps cur_lineno for them), as our batch line numbers do.
          lineOf: (n) => batch.firstLine + n - 1,
          ...(prepared?.created
            ? { dataHint: `--create chose the column types from the first ${o.sampleRows} rows: raise --sample, or create the table yourself` }
            : {}),
        }),
    });
    // Every batch is in: make it all visible at once.
    await pool.commit();
    progress.stop();
    progress = undefined;
    return { table: table.display, rows, bytes, batches, workers: pool.size, seconds: (Date.now() - started) / 1000, created: prepared.created };
  } catch (err) {
    progress?.stop();
    await pool?.rollback();
    if (prepared?.created && coordinator) {
      await coordinator.query(`DROP TABLE IF EXISTS ${prepared.table.sql}`).catch(() => undefined);
    }
    throw err instanceof DataioError ? err : mapQueryError(err, { action });
  } finally {
    await reader.close().catch(() => undefined);
    await pool?.close();
    await coordinator?.end().catch(() => undefined);
  }
}
