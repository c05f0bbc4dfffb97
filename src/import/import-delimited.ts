/**
 * CSV / text-format import: the fast path. The input is cut into batches of whole records by a
 * quote-aware byte scan and each batch's raw bytes go to `COPY … FROM STDIN` on a bounded pool of
 * connections; PostgreSQL parses and checks every value. All or nothing: every connection keeps one
 * transaction, committed only when every batch is in.
 */
import pLimit from 'p-limit';
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
import { readPrologue, type DelimitedFormat } from './prologue.js';
import { countLines, csvDialect, makeScanner, TEXT_DIALECT, type Eol } from './scanner.js';

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

/** Physical input line of the n-th (1-based) record of a batch: PostgreSQL counts records, we report lines. */
export function lineOfRecord(batch: Batch, n: number, fmt: DelimitedFormat, eol: Eol | null): number {
  if (eol === null || n <= 1) return batch.firstLine;
  const scanner = makeScanner(fmt.dialect, eol);
  let line = batch.firstLine;
  let records = 1;
  for (const chunk of batch.chunks) {
    let pos = 0;
    while (records < n) {
      const end = scanner.findEnd(chunk, pos);
      if (end === -1) {
        line += countLines(chunk.subarray(pos), eol);
        break;
      }
      line += countLines(chunk.subarray(pos, end), eol);
      records++;
      pos = end;
    }
    if (records >= n) return line;
  }
  return line;
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

export async function importDelimited(target: ConnectionTarget, o: DelimitedImportOptions, hooks: ImportHooks): Promise<ImportResult> {
  const fmt = delimitedFormat(o);
  if (!o.header && o.columns === undefined && o.create) {
    throw usage('--create needs column names: give the input a header, or pass --columns');
  }
  const tableName = parseTableName(o.table);
  const started = Date.now();
  const input: InputSource = await openInput(o.input);
  const reader = new ChunkReader(input.chunks);
  let coordinator: pg.Client | undefined;
  let pool: CopyPool | undefined;
  let created = false;
  let progress: Progress | undefined;
  try {
    const prologue = await readPrologue(reader, fmt, {
      header: o.header,
      sampleRows: o.create ? o.sampleRows : 0,
      stripBom: o.encoding === undefined || /^utf-?8$/i.test(o.encoding),
    });
    coordinator = await connectClient(target, 'dataio import');
    let table = await lookupTable(coordinator, tableName);
    let copyColumns: string[] | undefined = o.columns;
    const action = `import into ${displayName(tableName)}`;
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
        await coordinator.query(createTableSql(tableName, names, types));
      } catch (err) {
        throw mapQueryError(err, { action: `create table ${displayName(tableName)}` });
      }
      created = true;
      table = await lookupTable(coordinator, tableName);
      copyColumns = names;
    }
    if (!table) {
      throw new DataioError('TABLE_NOT_FOUND', `table ${displayName(tableName)} does not exist`, {
        hint: 'check the name (schema.table), or pass --create to make it from the input',
      });
    }
    if (copyColumns === undefined && prologue.header !== undefined) copyColumns = matchColumns(prologue.header, table);
    else if (copyColumns !== undefined && !o.create) copyColumns = matchColumns(copyColumns, table);
    const columnSql = copyColumns === undefined ? '' : ` (${copyColumns.map(quoteIdent).join(', ')})`;
    const copySql = `COPY ${table.sql}${columnSql} FROM STDIN (${copyOptionsSql(fmt, o.encoding)})`;

    let workers = o.workers;
    const free = await freeConnections(coordinator);
    if (free - 1 < workers) {
      const reduced = Math.max(1, free - 1);
      if (reduced < workers) hooks.warn(`the server has ${free} free connections: using ${reduced} workers instead of ${workers}`);
      workers = reduced;
    }

    if (o.truncate) {
      // Emptied inside the import's transaction, so a failed import leaves the old rows in place.
      // DELETE rather than TRUNCATE: TRUNCATE's exclusive lock would block the other connections' COPY.
      await coordinator.query('BEGIN');
      await coordinator.query(`DELETE FROM ${table.sql}`);
    }

    pool = new CopyPool({ target, maxWorkers: workers, copySql, warn: hooks.warn });
    progress = hooks.progress(input.size);
    const limit = pLimit(workers);
    const maxInFlight = Math.max(2, Math.min(2 * workers, Math.floor(MAX_IN_FLIGHT_BYTES / Math.max(o.batchSize, 1))));
    const inflight = new Set<Promise<void>>();
    let failure: unknown;
    let rows = 0;
    let bytes = 0;
    let batches = 0;
    const tick = () => progress?.update({ bytes: input.gzip || input.size === undefined ? bytes : input.rawBytesRead(), rows });
    const eol = prologue.eol;
    const dispatch = async (batch: Batch) => {
      while (inflight.size >= maxInFlight) await Promise.race(inflight);
      const activePool = pool as CopyPool;
      const p: Promise<void> = limit(() => activePool.copy(batch)).then(
        (n) => {
          rows += n;
          bytes += batch.bytes;
          batches++;
          tick();
        },
        (err: unknown) => {
          if (failure !== undefined) return;
          failure = mapQueryError(err, { action, lineOf: (n) => lineOfRecord(batch, n, fmt, eol) });
        },
      );
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
    };

    if (eol !== null || !prologue.empty) {
      const batcher = new Batcher({
        batchSize: o.batchSize,
        scanner: makeScanner(fmt.dialect, eol ?? 'lf'),
        eol,
        startOffset: prologue.dataOffset,
        startLine: prologue.dataLine,
      });
      outer: for await (const chunk of reader) {
        for (const batch of batcher.push(chunk)) {
          if (failure !== undefined) break outer;
          await dispatch(batch);
        }
        tick();
      }
      const last = batcher.end();
      if (last && failure === undefined) await dispatch(last);
    }
    await Promise.all(inflight);
    if (failure !== undefined) throw failure;
    // Every batch is in: make it all visible at once.
    await pool.commit();
    if (o.truncate) await coordinator.query('COMMIT');
    progress.stop();
    progress = undefined;
    return {
      table: table.display,
      rows,
      bytes,
      batches,
      workers: pool.size,
      seconds: (Date.now() - started) / 1000,
      created,
    };
  } catch (err) {
    progress?.stop();
    await pool?.rollback();
    if (coordinator && o.truncate) await coordinator.query('ROLLBACK').catch(() => undefined);
    if (created && coordinator) {
      await coordinator.query(`DROP TABLE IF EXISTS ${qualifiedName(tableName)}`).catch(() => undefined);
    }
    throw err instanceof DataioError ? err : mapQueryError(err, { action: `import into ${displayName(tableName)}` });
  } finally {
    await reader.close().catch(() => undefined);
    await pool?.close();
    await coordinator?.end().catch(() => undefined);
  }
}
