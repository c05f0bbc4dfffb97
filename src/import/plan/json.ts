/**
 * NDJSON and JSON-array import through the same parallel COPY engine as CSV. Records are cut without a
 * streaming tokenizer (newlines for NDJSON; a bracket-depth scan for arrays), each is scanned once
 * into a COPY text row keeping numbers' and nested values' source text, and rows are packed into
 * batches of about --batch-size bytes. `--json-path a.b` (an array inside a top-level object) goes
 * through stream-json's tokenizer, whose Stringer gives the picked array back as text with every
 * number as written.
 */
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createRequire } from 'node:module';
import type pg from 'pg';
import { DataioError, usage } from '../../errors.js';
import type { InputSource } from '../../io/input.js';
import type { TableInfo } from '../../pg/catalog.js';
import { mapQueryError } from '../../pg/pg-errors.js';
import type { BatchRecords } from '../cut/records.js';
import { ByteRowBuilder, RowWriter, wholeRecordBytesInto } from '../cut/json/byte-rows.js';
import { JsonArrayByteCutter, JsonInputError, NdjsonByteCutter, type RecordPosition } from '../cut/json/records.js';
import { UnknownKeyError, type RowColumn } from '../cut/json/rows.js';
import { JsonSyntaxError, scanObject, skipWs } from '../cut/json/scan.js';
import type { LoadableBatch } from '../load/batch-load.js';
import type { Reject } from '../load/rejects.js';
import type { InputSet } from '../read/inputs.js';
import type { Format, Loader } from './format.js';
import { JsonSampler } from './infer-json.js';
import type { ColumnDef } from './table.js';

export interface JsonOptions {
  format: 'ndjson' | 'json';
  jsonPath?: string | undefined;
  ignoreUnknown: boolean;
  jsonbColumn?: string | undefined;
  create: boolean;
  sampleRows: number;
  onError: 'abort' | 'skip';
}

/**
 * Records as parallel arrays (one object per record would be a lot of garbage at a billion rows). A
 * record is bytes [starts[i], ends[i]) of bufs[i], mostly a view of the piece it was read in.
 */
class Records {
  bufs: Buffer[] = [];
  starts: number[] = [];
  ends: number[] = [];
  lines: number[] = [];
  offsets: number[] = [];
  get length(): number {
    return this.lines.length;
  }
  add = (buf: Buffer, start: number, end: number, line: number, offset: number): void => {
    this.bufs.push(buf);
    this.starts.push(start);
    this.ends.push(end);
    this.lines.push(line);
    this.offsets.push(offset);
  };
  /** The record's source text. */
  text(i: number): string {
    return (this.bufs[i] as Buffer).toString('utf8', this.starts[i], this.ends[i]);
  }
  /** The record's bytes as in the input. */
  raw(i: number): Buffer {
    return (this.bufs[i] as Buffer).subarray(this.starts[i], this.ends[i]);
  }
  at(i: number): RecordPosition {
    return { line: this.lines[i] as number, offset: this.offsets[i] as number };
  }
}

export interface JsonBatch extends LoadableBatch {
  /** Input line and byte offset of each row's record, to map the server's "line N" back to the input. */
  lines: number[];
  offsets: number[];
  /** Skip mode: each row's record as it was in the input, for the rejects file. */
  raws: Buffer[] | undefined;
  endOffset: number;
}

/** The rows of a JSON batch one by one: row i is line i of the COPY text and record texts[i]. */
class JsonRecords implements BatchRecords {
  private readonly buf: Buffer;
  private readonly starts: number[] = [0];
  private readonly batch: JsonBatch;

  constructor(batch: JsonBatch) {
    this.batch = batch;
    this.buf = batch.chunks[0] ?? Buffer.alloc(0);
    // COPY text rows hold no raw newline (copyEscape): each ends at the next one.
    for (let nl = this.buf.indexOf(10); nl !== -1; nl = this.buf.indexOf(10, nl + 1)) this.starts.push(nl + 1);
  }

  get count(): number {
    return this.starts.length - 1;
  }

  copyInput(a: number, b: number): Buffer[] {
    return [this.buf.subarray(this.starts[a], this.starts[b])];
  }

  recordAtLine(a: number, b: number, serverLine: number): number | undefined {
    const i = a + serverLine - 1;
    return i < b ? i : undefined;
  }

  rejectAt(i: number): { line: number; offset: number; raw: Buffer } {
    return { line: this.batch.lines[i] as number, offset: this.batch.offsets[i] as number, raw: this.batch.raws?.[i] ?? Buffer.alloc(0) };
  }
}

/** Where a record is, for messages; `file` is its input's name when the import reads several. */
function where(format: 'ndjson' | 'json', pos: RecordPosition, file?: string): string {
  const line = file !== undefined ? `${file}, line ${pos.line}` : `input line ${pos.line}`;
  return format === 'ndjson' ? line : `byte offset ${pos.offset} (${line})`;
}

/** Records of the input, a piece's worth at a time. */
async function* recordsOf(input: InputSource, o: JsonOptions, file: string | undefined): AsyncGenerator<Records> {
  let out = new Records();
  const add = (buf: Buffer, start: number, end: number, line: number, offset: number): void => out.add(buf, start, end, line, offset);
  const cutter = o.format === 'ndjson' ? new NdjsonByteCutter(add) : new JsonArrayByteCutter(add);
  try {
    for await (const chunk of o.jsonPath !== undefined ? pickPath(input.chunks, o.jsonPath) : input.chunks) {
      cutter.push(chunk);
      if (out.length > 0) {
        yield out;
        out = new Records();
      }
    }
    cutter.end();
    if (out.length > 0) yield out;
  } catch (err) {
    if (err instanceof JsonInputError) {
      throw new DataioError('INPUT_FORMAT', `malformed JSON at ${where(o.format, err, file)}: ${err.message}`, {
        hint: o.format === 'json' ? 'the input must be one JSON array of objects (use --format ndjson for one object a line)' : 'each line must hold one JSON object',
        line: err.line,
      });
    }
    throw err;
  }
}

/** stream-json (CommonJS) for --json-path: tokenize, pick the path, and give the array back as text. */
async function* pickPath(chunks: AsyncIterable<Buffer>, path: string): AsyncGenerator<Buffer> {
  const require = createRequire(import.meta.url);
  const { parser } = require('stream-json') as { parser: (o?: object) => NodeJS.ReadWriteStream };
  const { pick } = require('stream-json/filters/Pick') as { pick: (o: object) => NodeJS.ReadWriteStream };
  const { stringer } = require('stream-json/Stringer') as { stringer: (o?: object) => NodeJS.ReadWriteStream };
  // pipeline, not pipe(): an error in any stage (malformed JSON in the tokenizer) must end the
  // iteration below with that error, not escape as an unhandled 'error' event.
  const out = new PassThrough();
  pipeline(Readable.from(chunks, { objectMode: false }), parser(), pick({ filter: path, once: true }), stringer(), out).catch((err: unknown) =>
    out.destroy(err as Error),
  );
  let any = false;
  try {
    for await (const c of out as AsyncIterable<Buffer | string>) {
      any = true;
      yield Buffer.isBuffer(c) ? c : Buffer.from(c);
    }
  } catch (err) {
    throw new DataioError('INPUT_FORMAT', `malformed JSON: ${(err as Error).message}`, { cause: err });
  }
  if (!any) throw new DataioError('INPUT_FORMAT', `the input has nothing at --json-path ${path}`, { hint: 'name the keys from the top-level object down, like data.items' });
}

/** Pull the first `n` records (for --create and for the column list), keeping the stream usable. */
async function peekRecords(gen: AsyncGenerator<Records>, n: number): Promise<{ head: Records[]; rest: AsyncGenerator<Records> }> {
  const head: Records[] = [];
  let count = 0;
  let exhausted = false;
  while (count < n) {
    const r = await gen.next();
    if (r.done) {
      exhausted = true;
      break;
    }
    head.push(r.value);
    count += r.value.length;
  }
  async function* rest(): AsyncGenerator<Records> {
    if (exhausted) return;
    yield* gen;
  }
  return { head, rest: rest() };
}

function recordError(err: unknown, format: 'ndjson' | 'json', pos: RecordPosition, file: string | undefined): DataioError {
  if (err instanceof UnknownKeyError) {
    return new DataioError('COLUMN_NOT_FOUND', `the record at ${where(format, pos, file)} has the key ${JSON.stringify(err.key)}, which is not a column`, {
      hint: 'pass --ignore-unknown to skip such keys, or add the column',
      line: pos.line,
    });
  }
  if (err instanceof JsonSyntaxError) {
    return new DataioError('INPUT_FORMAT', `malformed JSON at ${where(format, pos, file)}: ${err.message}`, { line: pos.line });
  }
  return err instanceof DataioError ? err : new DataioError('INTERNAL', (err as Error).message, { cause: err });
}

/** Batches of COPY rows from one input's records; `index` numbers them over all the inputs. */
async function* batchesOf(
  records: AsyncIterable<Records>,
  toRow: (buf: Buffer, start: number, end: number, out: RowWriter) => void,
  format: 'ndjson' | 'json',
  rows: RowWriter,
  batchSize: number,
  skip: boolean,
  at: { file: number; name: string | undefined; index: number },
): AsyncGenerator<JsonBatch> {
  let lines: number[] = [];
  let offsets: number[] = [];
  let raws: Buffer[] | undefined = skip ? [] : undefined;
  let preRejects: Reject[] = [];
  let first: RecordPosition | undefined;
  let lastOffset = 0;
  const flush = (): JsonBatch => {
    const buf = rows.take();
    const pos = first ?? { line: lines[0] as number, offset: offsets[0] as number };
    const batch: JsonBatch = { index: at.index++, file: at.file, chunks: [buf], bytes: buf.length, offset: pos.offset, endOffset: lastOffset + 1, firstLine: pos.line, lines, offsets, raws };
    if (preRejects.length > 0) batch.preRejects = preRejects;
    // Once the batch is loaded, its buffer is written into again for a later one.
    batch.release = () => rows.recycle(buf);
    lines = [];
    offsets = [];
    raws = skip ? [] : undefined;
    preRejects = [];
    first = undefined;
    return batch;
  };
  for await (const group of records) {
    const { bufs, starts, ends } = group;
    for (let i = 0; i < group.length; i++) {
      const pos = group.at(i);
      first ??= pos;
      lastOffset = pos.offset;
      try {
        toRow(bufs[i] as Buffer, starts[i] as number, ends[i] as number, rows);
      } catch (err) {
        const e = recordError(err, format, pos, at.name);
        // A record that cannot become a row is a reject in skip mode (an input structure error, which
        // the cutter reports, is not: it ends the import).
        if (!skip || e.code === 'INTERNAL') throw e;
        preRejects.push({ line: pos.line, offset: pos.offset, column: err instanceof UnknownKeyError ? err.key : undefined, message: e.message, raw: group.raw(i) });
        continue;
      }
      lines.push(pos.line);
      offsets.push(pos.offset);
      raws?.push(group.raw(i));
      if (rows.length >= batchSize) yield flush();
    }
  }
  if (first !== undefined) yield flush();
}

/** Table columns a record may set; a column with a default that no sampled record names keeps its default. */
async function targetColumns(client: pg.Client, table: TableInfo, sampledKeys: ReadonlySet<string>): Promise<RowColumn[]> {
  const r = await client.query<{ name: string; json: boolean; defaulted: boolean; generated: boolean }>(
    `SELECT attname AS name, atttypid IN ('json'::regtype, 'jsonb'::regtype) AS json,
            (atthasdef OR attidentity <> '') AS defaulted, attgenerated <> '' AS generated
       FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [table.oid],
  );
  return r.rows.filter((c) => !c.generated && (!c.defaulted || sampledKeys.has(c.name))).map((c) => ({ name: c.name, json: c.json }));
}


/**
 * NDJSON and JSON-array inputs: records become COPY text rows keeping numbers' and nested values'
 * source text, packed into batches of about --batch-size bytes (a batch never spans two inputs).
 */
export class JsonInput implements Format<JsonBatch> {
  private readonly o: JsonOptions;
  private readonly inputs: InputSet;
  private readonly sampler = new JsonSampler();
  /** The first input's records: the sampled head, and the rest of its stream. */
  private head: Records[] = [];
  private rest: AsyncGenerator<Records> | undefined;
  private readonly open = new Set<AsyncGenerator<Records>>();

  constructor(o: JsonOptions, inputs: InputSet) {
    if (o.jsonPath !== undefined && o.format !== 'json') throw usage('--json-path applies to JSON input (--format json)');
    this.o = o;
    this.inputs = inputs;
  }

  private name(file: number): string | undefined {
    return this.inputs.files.length > 1 ? this.inputs.files[file]?.path : undefined;
  }

  private async records(file: number): Promise<AsyncGenerator<Records>> {
    const gen = recordsOf(await this.inputs.open(file), this.o, this.name(file));
    this.open.add(gen);
    return gen;
  }

  async shape(create: boolean): Promise<ColumnDef[] | undefined> {
    const { head, rest } = await peekRecords(await this.records(0), this.o.sampleRows);
    this.head = head;
    this.rest = rest;
    if (this.o.jsonbColumn === undefined) {
      for (const records of head) {
        for (let i = 0; i < records.length; i++) {
          const text = records.text(i);
          try {
            const end = scanObject(text, skipWs(text, 0, text.length), text.length, this.sampler);
            if (end < 0) throw new JsonSyntaxError('the record ends inside its object (truncated?)', text.length);
          } catch (err) {
            // Skip mode: a bad record is rejected when its batch is built; it just adds no keys.
            if (this.o.onError !== 'skip') throw recordError(err, this.o.format, records.at(i), this.name(0));
          }
        }
      }
    }
    if (!create) return undefined;
    if (this.o.jsonbColumn !== undefined) return [{ name: this.o.jsonbColumn, type: 'jsonb' }];
    if (head.length === 0 || this.sampler.keys.length === 0) throw new DataioError('INPUT_FORMAT', 'the input holds no records to create a table from', { hint: 'create the table yourself' });
    return this.sampler.types();
  }

  async bind(client: pg.Client, table: TableInfo): Promise<Loader<JsonBatch>> {
    let columns: RowColumn[];
    let toRow: (buf: Buffer, start: number, end: number, out: RowWriter) => void;
    if (this.o.jsonbColumn !== undefined) {
      const col = table.columns.find((c) => c.name === this.o.jsonbColumn);
      if (!col) throw new DataioError('COLUMN_NOT_FOUND', `--jsonb-column ${this.o.jsonbColumn} is not a column of ${table.display}`);
      columns = [{ name: col.name, json: true }];
      toRow = wholeRecordBytesInto;
    } else {
      columns = await targetColumns(client, table, new Set(this.sampler.keys));
      const builder = new ByteRowBuilder(columns, this.o.ignoreUnknown);
      toRow = (buf, start, end, out) => builder.rowInto(buf, start, end, out);
    }
    const action = `import into ${table.display}`;
    const dataHint = this.o.create ? `--create chose the column types from the first ${this.o.sampleRows} records: raise --sample, or create the table yourself` : undefined;
    const format = this.o.format;
    return {
      columns: columns.map((c) => c.name),
      copyOptions: 'FORMAT text',
      rejectsAs: { kind: 'json' },
      batches: (batchSize, pass) => this.batches(toRow, batchSize, pass),
      progressBytes: (b) => this.inputs.sizeBefore(b.file) + b.endOffset - 1,
      records: (b) => new JsonRecords(b),
      rejectsLayout: { framing: format === 'ndjson' ? 'lines' : 'json-array', eol: Buffer.from('\n') },
      mapError: (err, batch) =>
        mapQueryError(err, {
          action,
          // The server counts the rows of this batch; name the record in the input instead.
          locate: (n) => {
            const line = batch.lines[n - 1];
            const offset = batch.offsets[n - 1];
            return line === undefined || offset === undefined ? undefined : { text: where(format, { line, offset }, this.name(batch.file)), line };
          },
          ...(dataHint !== undefined ? { dataHint } : {}),
        }),
    };
  }

  private async *batches(toRow: (buf: Buffer, start: number, end: number, out: RowWriter) => void, batchSize: number, pass: number): AsyncGenerator<JsonBatch> {
    const rows = new RowWriter(batchSize);
    const at = { file: 0, name: undefined as string | undefined, index: 0 };
    for (let i = 0; i < this.inputs.files.length; i++) {
      let records: AsyncIterable<Records>;
      let gen: AsyncGenerator<Records> | undefined;
      if (i === 0 && pass === 0 && this.rest !== undefined) {
        const head = this.head;
        const rest = this.rest;
        gen = rest;
        records = (async function* () {
          yield* head;
          yield* rest;
        })();
      } else {
        gen = await this.records(i);
        records = gen;
      }
      at.file = i;
      at.name = this.name(i);
      try {
        yield* batchesOf(records, toRow, this.o.format, rows, batchSize, this.o.onError === 'skip', at);
      } finally {
        this.open.delete(gen);
        await gen.return(undefined).catch(() => undefined);
      }
    }
  }

  async close(): Promise<void> {
    for (const g of this.open) await g.return(undefined).catch(() => undefined);
    this.open.clear();
  }
}
