/**
 * `dataio import`, as a library call: resolve the inputs (files, directories, stdin) and their format,
 * then run the job with the format's reader; a transient failure of a whole all-or-nothing import is
 * tried again from the start (retry.ts).
 */
import { READ_CHUNK } from '../io/input.js';
import { SlabPool } from '../io/slab-pool.js';
import type { ConnectionTarget } from '../pg/connect.js';
import { runImport } from './job.js';
import { defaultRejectsPath } from './load/rejects.js';
import { jobOptionsOf, type CommonImportOptions, type ImportHooks, type ImportResult } from './options.js';
import { DelimitedInput, delimitedFormat, type DelimitedOptions } from './plan/delimited.js';
import { JsonInput, type JsonOptions } from './plan/json.js';
import { InputSet, resolveInputs, type InputFormat } from './read/inputs.js';
import { retryingImport } from './retry.js';

export type { ImportHooks, ImportResult } from './options.js';

export interface ImportOptions extends CommonImportOptions {
  /** One format for every input (else each file's extension says, else csv). */
  format?: InputFormat | undefined;
  csv: Omit<DelimitedOptions, 'format' | 'create' | 'sampleRows'>;
  json: Omit<JsonOptions, 'format' | 'create' | 'sampleRows' | 'onError'>;
}

/** The format the inputs are read as (the first file's, which every other must share). */
export async function inputFormatOf(paths: readonly string[], format: InputFormat | undefined): Promise<InputFormat> {
  if (format !== undefined) return format;
  return ((await resolveInputs(paths, undefined))[0] as { format: InputFormat }).format;
}

const EXT: Record<InputFormat, string> = { csv: '.csv', tsv: '.tsv', ndjson: '.ndjson', json: '.json' };

export async function importInputs(target: ConnectionTarget, o: ImportOptions, hooks: ImportHooks): Promise<ImportResult> {
  const files = await resolveInputs(o.inputs, o.format);
  const kind = (files[0] as { format: InputFormat }).format;
  const rejects = defaultRejectsPath(files[0]?.path ?? '-', o.table, EXT[kind]);
  const names = files.map((f) => f.path);
  const reopenable = !names.includes('-');
  const signal = hooks.signal !== undefined ? { signal: hooks.signal } : {};
  if (kind === 'csv' || kind === 'tsv') {
    const d: DelimitedOptions = { ...o.csv, format: kind === 'tsv' ? 'text' : 'csv', create: o.create, sampleRows: o.sampleRows };
    const fmt = delimitedFormat(d);
    const job = jobOptionsOf(o, rejects, {
      format: d.format,
      delimiter: fmt.delimiter,
      quote: fmt.quote,
      escape: fmt.escape,
      null: fmt.nullString,
      header: d.header,
      columns: d.columns ?? null,
      encoding: d.encoding ?? null,
    });
    const attempt = async (): Promise<ImportResult> => {
      // Read buffers are reused once the batches cut from them are loaded (slab-pool.ts).
      const pool = new SlabPool(READ_CHUNK);
      const inputs = new InputSet(files, { pool, ...signal });
      const format = new DelimitedInput(d, inputs, pool);
      try {
        return await runImport(target, job, inputs, hooks, format);
      } finally {
        await format.close();
      }
    };
    return retryingImport(attempt, { reopenable, warn: hooks.warn, signal: hooks.signal });
  }
  const j: JsonOptions = { ...o.json, format: kind === 'ndjson' ? 'ndjson' : 'json', create: o.create, sampleRows: o.sampleRows, onError: o.onError };
  const job = jobOptionsOf(o, rejects, {
    format: j.format,
    jsonPath: j.jsonPath ?? null,
    ignoreUnknown: j.ignoreUnknown,
    jsonbColumn: j.jsonbColumn ?? null,
    // The sampled keys decide which defaulted columns are loaded, so the rows' bytes.
    sample: o.sampleRows,
  });
  const attempt = async (): Promise<ImportResult> => {
    const inputs = new InputSet(files, signal);
    const format = new JsonInput(j, inputs);
    try {
      return await runImport(target, job, inputs, hooks, format);
    } finally {
      await format.close();
    }
  };
  return retryingImport(attempt, { reopenable, warn: hooks.warn, signal: hooks.signal });
}
