/**
 * CSV / text-format import: the fast path. The input is cut into batches of whole records by a
 * quote-aware byte scan and each batch's raw bytes go to `COPY … FROM STDIN` on a bounded pool of
 * connections; PostgreSQL parses and checks every value. All or nothing: every connection keeps one
 * transaction, committed only when every batch is in.
 */
import { DataioError, usage } from '../errors.js';
import { ChunkReader, openInput, READ_CHUNK } from '../io/input.js';
import { SlabPool } from '../io/slab-pool.js';
import type { TableInfo } from '../pg/catalog.js';
import type { ConnectionTarget } from '../pg/connect.js';
import { displayName, quoteIdent, quoteLiteral } from '../pg/ident.js';
import { mapQueryError } from '../pg/pg-errors.js';
import { Batcher, type Batch } from './batcher.js';
import { DelimitedRecords, EOL_BYTES } from './csv-records.js';
import { inferTypes } from './infer.js';
import { findOrCreateTable, jobOptionsOf, runImport, type CommonImportOptions, type ImportHooks, type ImportResult } from './job.js';
import { retryingImport } from './retry-import.js';
import { readPrologue, type DelimitedFormat, type Prologue } from './prologue.js';
import { csvDialect, makeScanner, TEXT_DIALECT } from './scanner.js';

export type { ImportHooks, ImportResult } from './job.js';

export interface DelimitedImportOptions extends CommonImportOptions {
  format: 'csv' | 'text';
  delimiter?: string | undefined;
  quote?: string | undefined;
  escape?: string | undefined;
  nullString?: string | undefined;
  header: boolean;
  columns?: string[] | undefined;
  encoding?: string | undefined;
}

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

/** The COPY statement for the input's columns (matched to the table's, or all of them). */
function copySqlFor(table: TableInfo, o: DelimitedImportOptions, fmt: DelimitedFormat, prologue: Prologue, created: string[] | undefined): string {
  let columns = created;
  if (columns === undefined) {
    const given = o.columns ?? prologue.header;
    if (given !== undefined) columns = matchColumns(given, table);
  }
  const columnSql = columns === undefined ? '' : ` (${columns.map(quoteIdent).join(', ')})`;
  return `COPY ${table.sql}${columnSql} FROM STDIN (${copyOptionsSql(fmt, o.encoding)})`;
}

/** The input after its prologue, as batches of whole records. */
async function* batchesOf(reader: ChunkReader, fmt: DelimitedFormat, prologue: Prologue, batchSize: number, pool: SlabPool): AsyncGenerator<Batch> {
  if (prologue.empty) return;
  const batcher = new Batcher({
    batchSize,
    scanner: makeScanner(fmt.dialect, prologue.eol ?? 'lf'),
    eol: prologue.eol,
    startOffset: prologue.dataOffset,
    startLine: prologue.dataLine,
    pool,
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
  const job = jobOptionsOf(o, o.format === 'text' ? '.tsv' : '.csv', {
    format: o.format,
    delimiter: fmt.delimiter,
    quote: fmt.quote,
    escape: fmt.escape,
    null: fmt.nullString,
    header: o.header,
    columns: o.columns ?? null,
    encoding: o.encoding ?? null,
  });
  const action = `import into ${displayName(job.tableName)}`;
  const attempt = async (): Promise<ImportResult> => {
    // Read buffers are reused once the batches cut from them are loaded (slab-pool.ts).
    const pool = new SlabPool(READ_CHUNK);
    const input = await openInput(o.input, undefined, { pool, ...(hooks.signal !== undefined ? { signal: hooks.signal } : {}) });
    const reader = new ChunkReader(input.chunks);
    try {
      return await runImport(target, job, input, hooks, async (client, batchSize, ctx) => {
        const prologue = await readPrologue(reader, fmt, {
          header: o.header,
          sampleRows: o.create ? o.sampleRows : 0,
          stripBom: o.encoding === undefined || /^utf-?8$/i.test(o.encoding),
        });
        const names = o.columns ?? prologue.header ?? [];
        const types = o.create ? inferTypes(names.length, prologue.sample) : [];
        const create = o.create ? { columns: names.map((name, i) => ({ name, type: types[i] ?? 'text' })) } : undefined;
        const { table, created } = await findOrCreateTable(client, job.tableName, create, ctx);
        const dataHint = o.create ? `--create chose the column types from the first ${o.sampleRows} rows: raise --sample, or create the table yourself` : undefined;
        return {
          table,
          created,
          copySql: copySqlFor(table, o, fmt, prologue, o.create ? names : undefined),
          batches: batchesOf(reader, fmt, prologue, batchSize, pool),
          progressBytes: (batch: Batch) => batch.offset + batch.bytes,
          records: (batch: Batch) => new DelimitedRecords(batch, fmt.dialect, prologue.eol),
          rejectsLayout: { header: prologue.headerBytes, framing: 'lines', eol: EOL_BYTES[prologue.eol ?? 'lf'] },
          mapError: (err: unknown, batch: Batch) =>
            mapQueryError(err, {
              action,
              // PostgreSQL's "line N" counts physical lines, newlines inside quoted fields included
              // (CopyReadLineText bumps cur_lineno for them), as our batch line numbers do.
              locate: (n) => ({ text: `input line ${batch.firstLine + n - 1}`, line: batch.firstLine + n - 1 }),
              ...(dataHint !== undefined ? { dataHint } : {}),
            }),
        };
      });
    } finally {
      await reader.close().catch(() => undefined);
    }
  };
  return retryingImport(attempt, { reopenable: o.input !== '-', warn: hooks.warn, signal: hooks.signal });
}
