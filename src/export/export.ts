/**
 * Export: a table or a query out as CSV, TSV, NDJSON or a JSON array, through `COPY … TO STDOUT`.
 * PostgreSQL formats (and builds the JSON); dataio streams the bytes with bounded memory, to stdout
 * or to a file that appears only when the export is complete.
 */
import { Readable, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { DataioError, usage } from '../errors.js';
import { isBrokenPipe, openOutput, outputError } from '../io/output.js';
import { zlib } from '../lazy-builtin.js';
import { connectClient, hangUp, type ConnectionTarget } from '../pg/connect.js';
import { isPgError, mapQueryError } from '../pg/pg-errors.js';
import type { Progress } from '../progress/progress.js';
import { CopyOut, isCopyError, type RowTally } from './copy-out.js';
import { RAW_ROWS, type RowShaper } from './copy-out-parser.js';
import { jsonArrayTransform } from './json-array.js';
import { jsonItems, jsonLines } from './json-rows.js';
import { exportShards, ShardsUnreachable, type ShardExportResult } from './citus.js';
import { exportRanges } from './parallel.js';
import type { NodesOption } from '../import/options.js';
import { estimateRows, resolveSource, type ResolvedSource } from './source.js';
import { exportCopySql, type ExportFormat } from './sql.js';
import { autoExportWorkers } from '../workers.js';

export type { ExportFormat } from './sql.js';

export interface ExportOptions {
  table?: string | undefined;
  query?: string | undefined;
  format: ExportFormat;
  /** A header line (CSV and TSV). */
  header: boolean;
  gzip: boolean;
  /** A file, or `-` for the hooks' stdout. */
  output: string;
  /** Connections for a table export (1: one COPY; 'auto': see autoExportWorkers). */
  workers: number | 'auto';
  /** Citus: where a distributed table's shards are read (none: one stream through the server --db names); default auto. */
  nodes?: NodesOption | undefined;
}

export interface ExportResult {
  rows: number;
  /** Bytes of the export before compression. */
  bytes: number;
  seconds: number;
  /** Connections used. */
  workers: number;
  /** COPY statements the export was cut into: 1, the ctid ranges, or the shards of a Citus table. */
  streams: number;
  /** A Citus distributed table read shard by shard: how many shards. */
  shards?: number;
  /** Servers read from (the nodes of a Citus cluster). */
  nodes: number;
  /** Citus, per shard: every node's snapshot was taken with distributed commits held out (see citus.ts). */
  consistentCut?: boolean;
  /** True when the reader closed the pipe before the end (`| head`). */
  truncatedByReader: boolean;
}

export interface ExportHooks {
  stdout: Writable;
  progress(label: string): Progress;
  warn(message: string): void;
  /** Aborted on SIGINT/SIGTERM: the export stops and leaves no file behind. */
  signal?: AbortSignal;
}

/** What one COPY may buffer: a socket read is 64 KiB; a parallel range waits after this much. */
const SINGLE_BUFFER = 1024 * 1024;
const RANGE_BUFFER = 8 * 1024 * 1024;

function shaperFor(format: ExportFormat): () => RowShaper {
  if (format === 'ndjson') return jsonLines;
  if (format === 'json') return jsonItems;
  return () => RAW_ROWS;
}

function checkOptions(o: ExportOptions): void {
  if ((o.table === undefined) === (o.query === undefined)) throw usage('export needs exactly one of --table, --query or --query-file');
  if (o.workers !== 'auto' && o.workers > 1 && o.table === undefined) {
    throw usage('--workers needs --table: a query cannot be cut into ranges', 'export a table, or run the query with one connection');
  }
}

/** A server or connection failure as one line; an unknown relation inside a query gets an export hint. */
function exportFailure(err: unknown, display: string): DataioError {
  // The default hint for a bad value (class 22) is about an input file; an export has none.
  const e = mapQueryError(err, { action: `export of ${display}`, dataHint: 'the server failed on a value while producing the rows: check the query or the data it reads (--verbose shows where)' });
  if (e.code !== 'TABLE_NOT_FOUND') return e;
  return new DataioError(e.code, e.message, { hint: 'check the table names in the query (schema.table)', cause: e.cause, ...(e.detail === undefined ? {} : { detail: e.detail }) });
}

export async function exportData(target: ConnectionTarget, o: ExportOptions, hooks: ExportHooks): Promise<ExportResult> {
  checkOptions(o);
  const started = Date.now();
  const out = openOutput(o.output, hooks.stdout);
  let outputFailure: unknown;
  out.stream.on('error', (err) => (outputFailure ??= err));
  let display = o.table ?? 'the query';
  let progress: Progress | undefined;
  let bytes = 0;
  let client: pg.Client | undefined;
  try {
    await out.ready();
    client = await connectClient(target, 'dataio export');
    const resolved = await resolveSource(client, o.table, o.query);
    display = resolved.display;
    const rowsTotal = await estimateRows(client, resolved.source);
    const shown = progress = hooks.progress(`export ${display}`);
    const tally: RowTally = { rows: 0 };
    const headerRows = o.header && (o.format === 'csv' || o.format === 'tsv') ? 1 : 0;
    const write = outputPipeline(o, out.stream, hooks.signal, (n) => {
      bytes += n;
      shown.update({ bytes, rows: Math.max(0, tally.rows - headerRows), rowsTotal });
    });

    let rows: number;
    let workers = 1;
    let streams = 1;
    let shards: ShardExportResult | undefined;
    const distributed = resolved.citus?.sharded === true;
    // 'auto': in parallel when the source is a table that can be cut into ranges or shards, silently not otherwise.
    const wanted = o.workers !== 'auto' ? o.workers : resolved.rangeable || distributed ? autoExportWorkers(target.local === true) : 1;
    if (wanted > 1 && !resolved.rangeable && !distributed) hooks.warn(`exporting over one connection: ${resolved.notRangeable ?? 'the table cannot be cut into ranges'}`);
    const nodes = o.nodes ?? { kind: 'auto' };
    if (wanted > 1 && distributed && nodes.kind !== 'none') {
      try {
        shards = await exportShards(
          client,
          target,
          {
            relation: resolved.source.sql,
            columns: resolved.citus?.columns ?? [],
            format: o.format,
            header: o.header,
            workers: o.workers === 'auto' ? Math.max(2, wanted) : wanted,
            nodes,
            shaper: shaperFor(o.format),
            tally,
            highWaterMark: RANGE_BUFFER,
          },
          write,
        );
      } catch (err) {
        if (!(err instanceof ShardsUnreachable)) throw err;
        // Nothing was written yet: the coordinator can still give every row, in one stream.
        hooks.warn(`exporting ${display} through ${target.display} over one connection: ${err.message}`);
      }
    }
    if (shards !== undefined) {
      rows = shards.rows;
      workers = shards.workers;
      streams = shards.shards;
    } else if (wanted > 1 && resolved.rangeable) {
      const lead = client;
      client = undefined;
      const r = await exportRanges(
        lead,
        {
          source: resolved.source,
          format: o.format,
          header: o.header,
          workers: wanted,
          shaper: shaperFor(o.format),
          tally,
          highWaterMark: RANGE_BUFFER,
          connect: () => connectClient(target, 'dataio export'),
        },
        write,
      );
      rows = r.rows;
      workers = r.workers;
      streams = r.ranges;
    } else {
      await exportOne(client, resolved, o, tally, write);
      // The rows as received, not the server's COPY count: a Citus coordinator counts the header of
      // `COPY dist_table TO STDOUT (HEADER)` as a row.
      rows = tally.rows - headerRows;
    }
    await out.commit();
    progress.update({ bytes, rows, rowsTotal });
    progress.stop();
    const cluster = shards === undefined ? {} : { shards: shards.shards, consistentCut: shards.consistentCut };
    return { rows, bytes, seconds: (Date.now() - started) / 1000, workers, streams, nodes: shards?.nodes ?? 1, ...cluster, truncatedByReader: false };
  } catch (err) {
    progress?.stop();
    await out.abort();
    if (out.name === 'stdout' && (isBrokenPipe(err) || isBrokenPipe(outputFailure))) {
      return { rows: 0, bytes, seconds: (Date.now() - started) / 1000, workers: 0, streams: 0, nodes: 0, truncatedByReader: true };
    }
    if (hooks.signal?.aborted) {
      throw new DataioError('INTERRUPTED', `export of ${display} interrupted${out.name === 'stdout' ? '' : `: ${out.name} was not written`}`);
    }
    if (err instanceof DataioError) throw err;
    if (err === outputFailure && !isCopyError(err) && !isPgError(err)) throw outputError(out.name, err);
    throw exportFailure(err, display);
  } finally {
    // Not waiting for the backend to exit (hangUp: as psql does): the command ends at once.
    if (client !== undefined) hangUp(client);
  }
}

/** Writes a source's bytes through the format's framing, a byte counter and gzip to the output. */
function outputPipeline(o: ExportOptions, output: Writable, signal: AbortSignal | undefined, counted: (bytes: number) => void) {
  const stages: (NodeJS.ReadWriteStream | Writable)[] = [];
  if (o.format === 'json') stages.push(jsonArrayTransform());
  stages.push(
    new Transform({
      transform(chunk: Buffer, _enc, cb) {
        counted(chunk.length);
        cb(null, chunk);
      },
    }),
  );
  if (o.gzip) stages.push(zlib().createGzip());
  stages.push(output);
  return (source: AsyncIterable<Buffer> | Readable): Promise<void> =>
    pipeline([source instanceof Readable ? source : Readable.from(source, { objectMode: false }), ...stages], signal === undefined ? {} : { signal });
}

async function exportOne(
  client: pg.Client,
  resolved: ResolvedSource,
  o: ExportOptions,
  tally: RowTally,
  write: (source: CopyOut) => Promise<void>,
): Promise<void> {
  const copy = new CopyOut(exportCopySql(resolved.source, o.format, o.header), shaperFor(o.format)(), tally, SINGLE_BUFFER);
  client.query(copy);
  await write(copy);
  await copy.finished;
}
