import type { Command } from 'commander';
import { EXIT_OK, EXIT_REJECTED, usage } from '../errors.js';
import type { ImportResult, OnConflict } from '../import/options.js';
import { DEFAULT_WORKERS } from '../workers.js';
import { formatBytes, formatCount } from '../progress/progress.js';
import type { CommandContext, Runner } from './context.js';
import { nodesOption, parseChar, parseChoice, parseColumnList, parseNonNegativeInt, parsePositiveInt, parseSize, tableFromPath } from './parse.js';

export const DEFAULT_SAMPLE = 1000;

interface ImportFlags {
  table?: string;
  format?: string;
  delimiter?: string;
  quote?: string;
  escape?: string;
  null?: string;
  header: boolean;
  columns?: string;
  create?: boolean;
  truncate?: boolean;
  encoding?: string;
  workers?: string;
  batchSize?: string;
  sample: string;
  json?: boolean;
  jsonPath?: string;
  ignoreUnknown?: boolean;
  jsonbColumn?: string;
  onError?: string;
  maxErrors?: string;
  rejects?: string;
  importId?: string;
  onConflict?: string;
  key?: string;
  nodes?: string;
}

/** --on-error, --max-errors, --rejects and --import-id, checked. --max-errors and --rejects imply skip. */
export function errorOptions(f: ImportFlags): { onError: 'abort' | 'skip'; maxErrors: number | undefined; rejectsPath: string | undefined; importId: string | undefined } {
  const given = f.onError === undefined ? undefined : parseChoice(f.onError, ['abort', 'skip'] as const, '--on-error');
  const implied = f.maxErrors !== undefined || f.rejects !== undefined;
  if (given === 'abort' && implied) throw usage(`--${f.maxErrors !== undefined ? 'max-errors' : 'rejects'} applies to --on-error skip`, 'drop --on-error abort, or the option');
  const maxErrors = f.maxErrors === undefined ? undefined : parseNonNegativeInt(f.maxErrors, '--max-errors');
  if (f.rejects === '') throw usage('--rejects needs a file name');
  const importId = f.importId;
  if (importId !== undefined && (importId.length === 0 || importId.length > 200 || /[\x00-\x1f]/.test(importId))) {
    throw usage('--import-id must be 1 to 200 printable characters', 'use something like a date and the file name: 2026-11-28-events');
  }
  return { onError: given ?? (implied ? 'skip' : 'abort'), maxErrors, rejectsPath: f.rejects, importId };
}

/** --on-conflict and --key. */
export function conflictOptions(f: ImportFlags): { onConflict: OnConflict; key: string[] | undefined } {
  const onConflict = f.onConflict === undefined ? 'error' : parseChoice(f.onConflict, ['error', 'nothing', 'update'] as const, '--on-conflict');
  if (onConflict !== 'error' && f.create === true) throw usage('--on-conflict merges into a table that exists, not one --create makes', 'create the table with its key first, then import with --on-conflict');
  const key = f.key === undefined ? undefined : parseColumnList(f.key, '--key');
  if (key !== undefined && onConflict === 'error') throw usage('--key applies to --on-conflict nothing or update', 'add --on-conflict update (or nothing)');
  return { onConflict, key };
}

export function defineImport(program: Command, run: Runner): void {
  program
    .command('import')
    .summary('load CSV, TSV, NDJSON or JSON arrays (files, directories or stdin; plain or gzip) into a table over parallel COPY')
    .description(
      'Load CSV, TSV, NDJSON or JSON-array files (a directory means its files, sorted by name; - means stdin) into a table. ' +
        'The input is cut into batches at record boundaries and loaded over parallel COPY connections. For CSV and TSV, ' +
        'PostgreSQL parses every value; JSON records become COPY rows with numbers kept exactly. All or nothing: when the ' +
        'import fails, the table is left as it was (with --import-id, the batches that are in stay, and the same command ' +
        'loads the rest). Several inputs are one import.',
    )
    .argument('<input...>', 'input files, directories, or - for stdin (gzip is detected by its magic bytes)')
    .option('-t, --table <name>', 'target table, as table or schema.table (default: the file name, with one input file)')
    .option('-f, --format <format>', 'csv, tsv (PostgreSQL text format), ndjson or json; default from each file\'s extension, else csv')
    .option('--delimiter <char>', "field delimiter (default ',' for csv, tab for tsv)")
    .option('--quote <char>', 'CSV quote character (default ")')
    .option('--escape <char>', 'CSV escape character (default: the quote character)')
    .option('--null <string>', 'the string that means NULL (default: an unquoted empty field for csv, \\N for tsv)')
    .option('--header', 'the first line holds column names', true)
    .option('--no-header', 'the input has no header line')
    .option('--columns <a,b,c>', 'the columns the input fields go to, in order')
    .option('--create', 'create the table, inferring column types from a sample of rows')
    .option('--truncate', 'empty the table first, inside the same all-or-nothing transaction')
    .option('--on-conflict <what>', 'a key the table has already: error (default), nothing (keep the table\'s row) or update (take the input\'s); a key the input holds twice: the last one wins')
    .option('--key <a,b>', 'with --on-conflict: the columns that identify a row (default: the primary key)')
    .option('--encoding <name>', 'input encoding, as PostgreSQL names it (default UTF8)')
    .option('-w, --workers <n>', `parallel COPY connections (default ${DEFAULT_WORKERS}; for a server on this machine, one per CPU core; one for an input of one batch)`)
    .option('--batch-size <size>', 'bytes per COPY batch, e.g. 1MB (default 4MB, less with many workers: 2 × workers batches stay within 64MB)')
    .option('--sample <rows>', 'rows read to infer types with --create', String(DEFAULT_SAMPLE))
    .option('--json-path <a.b>', 'JSON: import the array at this path inside a top-level object')
    .option('--ignore-unknown', 'JSON: skip keys that are not columns (else they are an error)')
    .option('--jsonb-column <name>', 'JSON: load each whole record into this one jsonb column')
    .option('--on-error <mode>', 'abort: the first bad row fails the import (default); skip: reject bad rows, load the rest')
    .option('--max-errors <n>', 'with skip: fail the import (as abort) when more than n rows are rejected (implies --on-error skip)')
    .option('--rejects <file>', 'with skip: where rejected records go, as valid input; FILE.log says why (default: INPUT.rejects.EXT next to the first input; implies --on-error skip)')
    .option('--import-id <id>', 'resumable: commit batch by batch with a ledger under this id; run the same command again to load only what is missing; several processes with the same id share the work')
    .option('--nodes <nodes>', 'Citus: where COPY connections go: auto (every node pg_dist_node lists, default), none (only --db), or postgresql:// URLs separated by commas')
    .option('--json', 'print the summary as one JSON object on stdout')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  $ dataio import fixtures/people.csv --table people --create\n' +
        '  $ gzip -dc big.csv.gz | dataio import - --table events --workers 4\n' +
        '  $ dataio import data.tsv --table t --truncate --progress json\n' +
        '  $ dataio import events.ndjson --table events --create\n' +
        '  $ dataio import big.csv --table t --on-error skip --max-errors 100   # bad rows to big.rejects.csv\n' +
        '  $ dataio import huge.csv --table t --import-id huge-2026-11-28      # after a crash: same command again\n' +
        '  $ dataio import incoming/2026-12-01/ --table events --on-conflict update --import-id events-2026-12-01\n' +
        '  $ curl -s https://api.example.com/export | dataio import - --format json --json-path data.items --table items',
    )
    .action(
      run(async (ctx, inputs, flags) => {
        const f = flags as ImportFlags;
        const paths = inputs as string[];
        const table = f.table ?? (paths.length === 1 ? tableFromPath(paths[0] as string) : undefined);
        if (table === undefined) throw usage(paths.length === 1 ? '--table is required when reading stdin' : '--table is required with several inputs');
        const format = f.format !== undefined ? parseChoice(f.format, ['csv', 'tsv', 'ndjson', 'json'] as const, '--format') : undefined;
        const workers: number | 'auto' = f.workers === undefined ? 'auto' : parsePositiveInt(f.workers, '--workers', 1000);
        const batchSize: number | 'auto' = f.batchSize === undefined ? 'auto' : parseSize(f.batchSize, '--batch-size');
        const sampleRows = parsePositiveInt(f.sample, '--sample');
        const hooks = {
          progress: (total: number | undefined) => ctx.progress(`import ${table}`, total),
          warn: (m: string) => ctx.warn(m),
          note: (m: string) => ctx.note(m),
          ...(ctx.io.interrupt !== undefined ? { signal: ctx.io.interrupt() } : {}),
        };
        const csvOnly = (['delimiter', 'quote', 'escape', 'null', 'columns', 'encoding'] as const).find((k) => f[k] !== undefined);
        const jsonOnly = (['jsonPath', 'ignoreUnknown', 'jsonbColumn'] as const).find((k) => f[k] !== undefined);
        const options = {
          inputs: paths,
          table,
          format,
          create: f.create === true,
          truncate: f.truncate === true,
          workers,
          batchSize,
          sampleRows,
          ...errorOptions(f),
          ...conflictOptions(f),
          nodes: nodesOption(f.nodes),
          csv: {
            delimiter: f.delimiter === undefined ? undefined : parseChar(f.delimiter, '--delimiter'),
            quote: f.quote === undefined ? undefined : parseChar(f.quote, '--quote'),
            escape: f.escape === undefined ? undefined : parseChar(f.escape, '--escape'),
            nullString: f.null,
            header: f.header,
            columns: f.columns === undefined ? undefined : parseColumnList(f.columns),
            encoding: f.encoding,
          },
          json: { jsonPath: f.jsonPath, ignoreUnknown: f.ignoreUnknown === true, jsonbColumn: f.jsonbColumn },
        };
        const target = await ctx.target();
        // The import's first connection opens while the rest of its code loads and its inputs are
        // found (the process would otherwise wait for the server with nothing to do).
        const { connectAhead } = await import('../pg/connect.js');
        const connection = await connectAhead(target, 'dataio import');
        try {
          // Loaded when the command runs, not at start-up: `dataio --help` stays quick.
          const { importInputs, inputFormatOf } = await import('../import/import.js');
          const kind = await inputFormatOf(paths, format);
          if ((kind === 'ndjson' || kind === 'json') && csvOnly !== undefined) throw usage(`--${csvOnly} applies to CSV and TSV input, not ${kind.toUpperCase()}`);
          if ((kind === 'csv' || kind === 'tsv') && jsonOnly !== undefined) throw usage(`--${jsonOnly.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} applies to JSON and NDJSON input`);
          const result = await importInputs(target, options, { ...hooks, connection });
          report(ctx, result, f.json === true);
          return result.rejected > 0 ? EXIT_REJECTED : EXIT_OK;
        } finally {
          connection.drop();
        }
      }),
    );
}

/**
 * What an upsert did to the table, after the summary's counts of input rows: the rows it added and
 * the rows it overwrote (update) or left (nothing); input rows that lost to a later row of their key.
 */
export function upsertSummary(r: Pick<ImportResult, 'rows' | 'earlierRows' | 'upsert'>): string {
  const u = r.upsert;
  if (u === undefined) return '';
  const parts = [`${formatCount(u.inserted)} new`];
  if (u.onConflict === 'update') parts.push(`${formatCount(u.updated)} updated`);
  // Every row the import loaded is new, updated, left (a key the table had, with nothing) or lost to
  // a later row of its key; all of the import's runs count (resumable: the move is the last run's).
  const rest = r.rows + (r.earlierRows ?? 0) - u.inserted - u.updated;
  if (rest > 0) parts.push(`${formatCount(rest)} ${u.onConflict === 'update' ? 'superseded by a later row of their key' : 'left as the table had them or superseded by a later row of their key'}`);
  return `; in the table: ${parts.join(', ')}`;
}

function report(ctx: CommandContext, r: ImportResult, json: boolean): void {
  if (json) {
    ctx.io.stdout.write(
      JSON.stringify({
        table: r.table,
        rows: r.rows,
        bytes: r.bytes,
        seconds: r.seconds,
        rowsPerSec: Math.round(r.rows / Math.max(r.seconds, 1e-3)),
        batches: r.batches,
        workers: r.workers,
        nodes: r.nodes,
        files: r.files,
        commit: r.commit,
        created: r.created,
        rejected: r.rejected,
        ...(r.rejectsFile !== undefined ? { rejectsFile: r.rejectsFile, rejectsLog: r.rejectsLog } : {}),
        ...(r.importId !== undefined ? { importId: r.importId, earlierRows: r.earlierRows ?? 0, alreadyComplete: r.alreadyComplete === true } : {}),
        ...(r.upsert !== undefined ? { inserted: r.upsert.inserted, updated: r.upsert.updated } : {}),
        peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
      }) + '\n',
    );
    return;
  }
  if (r.alreadyComplete === true) {
    ctx.note(`import ${JSON.stringify(r.importId)} into ${r.table} was already complete (${formatCount(r.earlierRows ?? 0)} rows): nothing to do`);
  } else {
    const rate = formatCount(r.rows / Math.max(r.seconds, 1e-3));
    const earlier = r.earlierRows !== undefined && r.earlierRows > 0 ? `; ${formatCount(r.earlierRows)} more were in from earlier runs of import ${JSON.stringify(r.importId)} or other processes` : '';
    const files = r.files > 1 ? ` from ${r.files} files` : '';
    ctx.note(
      `imported ${formatCount(r.rows)} ${r.rows === 1 ? 'row' : 'rows'} (${formatBytes(r.bytes)})${files} into ${r.table}${r.created ? ' (created)' : ''} in ${r.seconds.toFixed(1)} s (${rate} rows/s, ${r.workers} ${r.workers === 1 ? 'worker' : 'workers'}${r.nodes > 1 ? ` on ${r.nodes} nodes` : ''})${earlier}${upsertSummary(r)}`,
    );
  }
  if (r.rejected > 0) {
    const where = r.rejectsFile !== undefined ? `: they are in ${r.rejectsFile}, the reasons in ${r.rejectsLog ?? ''}` : '';
    ctx.warn(`rejected ${formatCount(r.rejected)} ${r.rejected === 1 ? 'row' : 'rows'}${where}`);
  }
}
