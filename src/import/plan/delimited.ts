/**
 * CSV and PostgreSQL text format (TSV): the fast path. Only the start of each input is parsed in Node
 * (the BOM, the header, a sample for --create); the rest is cut into batches of whole records by a
 * quote-aware byte scan, and each batch's raw bytes go to `COPY … FROM STDIN`: PostgreSQL parses and
 * checks every value. Several inputs are read one after the other; each one's header must name the
 * same columns as the first's.
 */
import type pg from 'pg';
import { DataioError, usage } from '../../errors.js';
import { ChunkReader, type InputSource } from '../../io/input.js';
import type { SlabPool } from '../../io/slab-pool.js';
import type { TableInfo } from '../../pg/catalog.js';
import { quoteLiteral } from '../../pg/ident.js';
import { mapQueryError } from '../../pg/pg-errors.js';
import { Batcher, type Batch } from '../cut/batcher.js';
import { endOf, endsAtRecord, FileJoiner, lineOf } from '../cut/join-files.js';
import { DelimitedRecords, EOL_BYTES } from '../cut/csv-records.js';
import { readPrologue, type DelimitedFormat, type Prologue } from '../cut/prologue.js';
import { CR, csvDialect, LF, makeScanner, TEXT_DIALECT, type Eol } from '../cut/scanner.js';
import { prepareSimd } from '../cut/byte-count.js';
import { endMarkerRule, endOfData, type EndMarkerRule } from '../cut/end-marker.js';
import type { InputSet } from '../read/inputs.js';
import type { Format, Loader } from './format.js';
import { inferTypes } from './infer.js';
import type { ColumnDef } from './table.js';

export interface DelimitedOptions {
  format: 'csv' | 'text';
  delimiter?: string | undefined;
  quote?: string | undefined;
  escape?: string | undefined;
  nullString?: string | undefined;
  header: boolean;
  columns?: string[] | undefined;
  encoding?: string | undefined;
  create: boolean;
  sampleRows: number;
}

/** Above this many input bytes, the counting's WebAssembly is compiled ahead (cut/byte-count.ts). */
const LARGE_INPUT = 1024 * 1024;

export function delimitedFormat(o: DelimitedOptions): DelimitedFormat {
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

/** One input file, opened, its prologue read. */
interface OpenFile {
  source: InputSource;
  reader: ChunkReader;
  prologue: Prologue;
}

export class DelimitedInput implements Format<Batch> {
  private readonly o: DelimitedOptions;
  private readonly fmt: DelimitedFormat;
  private readonly inputs: InputSet;
  private readonly pool: SlabPool | undefined;
  /** The first file, opened by shape() and handed to the first pass. */
  private first: OpenFile | undefined;
  private firstPrologue: Prologue | undefined;
  /** Each file's line ending (a batch's records are cut with its file's). */
  private readonly eols: (Prologue['eol'] | undefined)[] = [];
  private readonly readers = new Set<ChunkReader>();
  /** Which `\.` ends the data on the server (cut/end-marker.ts): known once bound. */
  private endMarker: EndMarkerRule | undefined;

  constructor(o: DelimitedOptions, inputs: InputSet, pool?: SlabPool) {
    this.o = o;
    this.fmt = delimitedFormat(o);
    this.inputs = inputs;
    this.pool = pool;
    if (!o.header && o.columns === undefined && o.create) throw usage('--create needs column names: give the input a header, or pass --columns');
    // More than the first batches' worth (or a pipe's unknown size): the byte counting's fast path,
    // compiled in the background while the import connects.
    if ((inputs.totalSize ?? Infinity) > LARGE_INPUT) prepareSimd();
  }

  private async openFile(i: number, sample: boolean): Promise<OpenFile> {
    const source = await this.inputs.open(i);
    const reader = new ChunkReader(source.chunks);
    this.readers.add(reader);
    const prologue = await readPrologue(reader, this.fmt, {
      header: this.o.header,
      sampleRows: sample ? this.o.sampleRows : 0,
      stripBom: this.o.encoding === undefined || /^utf-?8$/i.test(this.o.encoding),
    });
    this.eols[i] = prologue.eol;
    const first = this.firstPrologue;
    if (first === undefined) this.firstPrologue = prologue;
    else if (first.header !== undefined && JSON.stringify(prologue.header) !== JSON.stringify(first.header)) {
      throw new DataioError('INPUT_FORMAT', `${this.inputs.files[i]?.path} has other columns than ${this.inputs.files[0]?.path}: ${(prologue.header ?? []).join(',')} instead of ${first.header.join(',')}`, {
        hint: 'every input of one import must have the same header; import it separately',
      });
    }
    return { source, reader, prologue };
  }

  async shape(create: boolean): Promise<ColumnDef[] | undefined> {
    this.first = await this.openFile(0, create);
    if (!create) return undefined;
    const names = this.o.columns ?? this.first.prologue.header ?? [];
    const types = inferTypes(names.length, this.first.prologue.sample);
    return names.map((name, i) => ({ name, type: types[i] ?? 'text' }));
  }

  async bind(_client: pg.Client, table: TableInfo, created: boolean, serverVersion: number): Promise<Loader<Batch>> {
    this.endMarker = endMarkerRule(this.fmt.kind, serverVersion);
    const prologue = this.firstPrologue as Prologue;
    const given = this.o.columns ?? prologue.header;
    const columns = given === undefined ? undefined : created ? [...given] : matchColumns(given, table);
    const action = `import into ${table.display}`;
    const dataHint = this.o.create ? `--create chose the column types from the first ${this.o.sampleRows} rows: raise --sample, or create the table yourself` : undefined;
    return {
      columns,
      copyOptions: copyOptionsSql(this.fmt, this.o.encoding),
      rejectsAs: { kind: 'copy', options: copyOptionsSql(this.fmt, this.o.encoding) },
      batches: (batchSize, pass, joinFiles, ramp) => this.batches(batchSize, pass, joinFiles, ramp, action),
      // Files (and the joined ends of small files: FileJoiner joins only alike ones) that end their lines alike share COPYs.
      streamLines: (batch) => {
        const eol = this.eols[batch.file] ?? null;
        return { lines: batch.lines, endsLine: batch.endsInside !== true && endsWithLineEnd(batch, eol), group: eol ?? 'none' };
      },
      progressBytes: (batch) => {
        const end = endOf(batch);
        return this.inputs.sizeBefore(end.file) + end.endOffset;
      },
      records: (batch) => new DelimitedRecords(batch, this.fmt.dialect, this.eols[batch.file] ?? null),
      rejectsLayout: { header: prologue.headerBytes, framing: 'lines', eol: EOL_BYTES[prologue.eol ?? 'lf'] },
      mapError: (err, batch) =>
        mapQueryError(err, {
          action,
          // PostgreSQL's "line N" counts physical lines, newlines inside quoted fields included
          // (CopyReadLineText bumps cur_lineno for them), as our batch line numbers do.
          locate: (n) => {
            const at = lineOf(batch, n);
            return { text: this.inputs.where(at.file, at.line), line: at.line };
          },
          ...(dataHint !== undefined ? { dataHint } : {}),
        }),
    };
  }

  /**
   * Refuse an input line whose `\.` would end the data on this server (cut/end-marker.ts). A file's own
   * last line may be only `\.` (a trailing end marker, as some tools write), unless the file's end
   * shares a COPY with the next file's lines (`final`: nothing of this import comes after this batch in
   * its COPY).
   */
  private refuseEndMarker(b: Batch, final: boolean, action: string): void {
    if (this.endMarker === undefined) return;
    const eol = this.eols[b.file] ?? null;
    let records: DelimitedRecords | undefined;
    const found = endOfData(b.chunks, eol, this.endMarker, (at) => (records ??= new DelimitedRecords(b, this.fmt.dialect, eol)).startsAt(at));
    if (found === undefined) return;
    const last = final && found.line >= b.lines - (endsWithLineEnd(b, eol) ? 1 : 0);
    if (found.alone && last) return;
    const line = b.firstLine + found.line;
    const where = this.inputs.where(b.file, line);
    if (this.fmt.kind === 'csv') {
      throw new DataioError('DATA_ERROR', `${action} failed: ${where} holds only \\., which ends the data in CSV on PostgreSQL 17 and older: the rows after it would be left out`, {
        hint: 'remove that line, or quote it ("\\.") if it is a value',
        line,
      });
    }
    if (found.alone) {
      throw new DataioError('DATA_ERROR', `${action} failed: ${where} holds only \\., which ends the data in PostgreSQL's text format: the lines after it would be left out`, {
        hint: 'remove that line, or write it as \\\\. if it is a value',
        line,
      });
    }
    throw new DataioError('DATA_ERROR', `${action} failed: ${where} ends with \\., which ends the data in PostgreSQL's text format before version 18${last ? '' : ': the lines after it would be left out'}`, {
      hint: 'a backslash in a value is written \\\\ in that format',
      line,
    });
  }

  /** Every input as batches, numbered over all of them; with `joinFiles`, small files' ends joined (join-files.ts). */
  private async *batches(batchSize: number, pass: number, joinFiles: boolean, ramp: boolean, action: string): AsyncGenerator<Batch> {
    let index = 0;
    const joiner = joinFiles && this.inputs.files.length > 1 ? new FileJoiner(batchSize) : undefined;
    for (let i = 0; i < this.inputs.files.length; i++) {
      let file: OpenFile;
      if (i === 0 && pass === 0 && this.first !== undefined) file = this.first;
      else file = await this.openFile(i, false);
      try {
        const { prologue } = file;
        if (prologue.empty) continue;
        const batcher = new Batcher({
          batchSize,
          ramp,
          scanner: makeScanner(this.fmt.dialect, prologue.eol ?? 'lf'),
          eol: prologue.eol,
          startOffset: prologue.dataOffset,
          startLine: prologue.dataLine,
          pool: this.pool,
          file: i,
          firstIndex: index,
        });
        for await (const chunk of file.reader) {
          for (const b of batcher.push(chunk)) {
            this.refuseEndMarker(b, false, action);
            index++;
            if (joiner === undefined) yield b;
            else yield* joiner.push(b);
          }
        }
        const last = batcher.end();
        if (last) {
          this.refuseEndMarker(last, joiner === undefined || i === this.inputs.files.length - 1, action);
          index++;
          const eol = prologue.eol;
          // Whether the file ends where a record ends: only then may the next file's lines follow it (in
          // a joined batch, or in a shared COPY). With one input nothing follows: no need to scan.
          const several = this.inputs.files.length > 1;
          const clean = several && eol !== null && !batcher.inQuote && endsWithLineEnd(last, eol) && endsAtRecord(last, this.fmt.dialect, eol);
          if (several && !clean) last.endsInside = true;
          if (joiner === undefined) yield last;
          else yield* joiner.push(last, { eol, clean: clean && last.bytes < batchSize });
        }
      } finally {
        this.readers.delete(file.reader);
        await file.reader.close().catch(() => undefined);
      }
    }
    const held = joiner?.end();
    if (held !== undefined) yield held;
  }

  /** Close whatever is still open (an import that failed while reading). */
  async close(): Promise<void> {
    for (const r of this.readers) await r.close().catch(() => undefined);
    this.readers.clear();
  }
}

/** Whether a batch's last byte ends a line (a file's last batch may end without a line ending). */
export function endsWithLineEnd(batch: Pick<Batch, 'chunks'>, eol: Eol | null): boolean {
  if (eol === null) return false;
  for (let i = batch.chunks.length - 1; i >= 0; i--) {
    const chunk = batch.chunks[i] as Buffer;
    if (chunk.length > 0) return chunk[chunk.length - 1] === (eol === 'cr' ? CR : LF);
  }
  return false;
}
