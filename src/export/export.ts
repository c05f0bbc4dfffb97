/**
 * Export: a table or query out through `COPY … TO STDOUT`. PostgreSQL formats; dataio streams.
 */
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { to as copyTo } from 'pg-copy-streams';
import { DataioError, usage } from '../errors.js';
import { isBrokenPipe, openOutput } from '../io/output.js';
import { connectClient, type ConnectionTarget } from '../pg/connect.js';
import { displayName, parseTableName, qualifiedName } from '../pg/ident.js';
import { mapQueryError } from '../pg/pg-errors.js';
import type { Progress } from '../progress/progress.js';

export type ExportFormat = 'csv';

export interface ExportOptions {
  table?: string | undefined;
  query?: string | undefined;
  format: ExportFormat;
  header: boolean;
  output: string;
}

export interface ExportResult {
  rows: number;
  bytes: number;
  seconds: number;
  /** True when the reader closed the pipe before the end (`| head`). */
  truncatedByReader: boolean;
}

export interface ExportHooks {
  progress(): Progress;
}

export function exportCopySql(o: ExportOptions): string {
  if ((o.table === undefined) === (o.query === undefined)) throw usage('export needs exactly one of --table or --query');
  const source = o.table !== undefined ? qualifiedName(parseTableName(o.table)) : `(${o.query})`;
  return `COPY ${source} TO STDOUT (FORMAT csv${o.header ? ', HEADER' : ''})`;
}

export async function exportData(target: ConnectionTarget, o: ExportOptions, hooks: ExportHooks): Promise<ExportResult> {
  const sql = exportCopySql(o);
  const action = o.table !== undefined ? `export of ${displayName(parseTableName(o.table))}` : 'export of the query';
  const started = Date.now();
  const client = await connectClient(target, 'dataio export');
  const out = openOutput(o.output);
  const progress = hooks.progress();
  let bytes = 0;
  try {
    const source = client.query(copyTo(sql));
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        bytes += chunk.length;
        progress.update({ bytes, rows: 0 });
        cb(null, chunk);
      },
    });
    try {
      await pipeline(source, counter, out.stream);
    } catch (err) {
      if (out.name === 'stdout' && isBrokenPipe(err)) {
        progress.stop();
        return { rows: 0, bytes, seconds: (Date.now() - started) / 1000, truncatedByReader: true };
      }
      throw err;
    }
    await out.commit();
    progress.stop();
    return { rows: source.rowCount, bytes, seconds: (Date.now() - started) / 1000, truncatedByReader: false };
  } catch (err) {
    progress.stop();
    await out.abort();
    if (err instanceof DataioError) throw err;
    if ((err as NodeJS.ErrnoException).syscall !== undefined) {
      throw new DataioError('OUTPUT_WRITE', `cannot write ${out.name}: ${(err as Error).message}`, { cause: err });
    }
    throw mapQueryError(err, { action });
  } finally {
    await client.end().catch(() => undefined);
  }
}
