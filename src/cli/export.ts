import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { DataioError, EXIT_OK, usage } from '../errors.js';
import { EXPORT_FORMATS } from '../export/sql.js';
import { formatBytes, formatCount } from '../progress/progress.js';
import { formatFromPath, parseChoice, parsePositiveInt } from './parse.js';
import type { Runner } from './context.js';

interface ExportFlags {
  table?: string;
  query?: string;
  queryFile?: string;
  format?: string;
  output: string;
  header: boolean;
  gzip?: boolean;
  workers?: string;
}

export function defineExport(program: Command, run: Runner): void {
  program
    .command('export')
    .summary('stream a table or query out as CSV, TSV, NDJSON or JSON')
    .description(
      'Stream a table or a query out through COPY … TO STDOUT, to stdout or a file. CSV and TSV are ' +
        "PostgreSQL's own formats (the bytes psql's \\copy gives); NDJSON and JSON are built by the server " +
        '(row_to_json: numbers stay exact numbers, json/jsonb nest, timestamps are ISO 8601). A file is ' +
        'written under a temporary name and appears only when the export is complete.',
    )
    .option('-t, --table <name>', 'the table to export, as table or schema.table')
    .option('-c, --query <sql>', 'a query whose result to export (-c as in psql)')
    .option('--query-file <file>', 'read the query from a file')
    .option('-f, --format <format>', 'csv, tsv, ndjson or json (default: from the -o extension, else csv)')
    .option('-o, --output <file>', 'output file, or - for stdout', '-')
    .option('--header', 'write a header line, for csv and tsv', true)
    .option('--no-header', 'no header line')
    .option('-z, --gzip', 'compress with gzip (default when -o ends in .gz)')
    .option('-w, --workers <n>', 'connections for a table, reading ctid ranges of one snapshot in parallel (default: one per CPU core for a server on this machine, else 4; 1 for a query)')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  $ dataio export --table people > people.csv\n' +
        '  $ dataio export --query "select id, name from people where id < 10" -o small.csv\n' +
        '  $ dataio export --table events -o events.ndjson.gz --workers 4\n' +
        '  $ dataio export --query-file report.sql --format ndjson | jq .name',
    )
    .action(
      run(async (ctx, flags) => {
        const f = flags as ExportFlags;
        let query = f.query;
        if (f.queryFile !== undefined) {
          if (query !== undefined) throw usage('give --query or --query-file, not both');
          try {
            query = await readFile(f.queryFile, 'utf8');
          } catch (err) {
            throw new DataioError('INPUT_NOT_FOUND', `cannot read the query file ${f.queryFile}: ${(err as Error).message}`);
          }
        }
        if ([f.table, query].filter((v) => v !== undefined).length !== 1) {
          throw usage('export needs exactly one of --table, --query or --query-file');
        }
        const toFile = f.output !== '-';
        const format =
          f.format !== undefined ? parseChoice(f.format, EXPORT_FORMATS, '--format') : ((toFile ? formatFromPath(f.output) : undefined) ?? 'csv');
        const gzip = f.gzip === true || (toFile && /\.gz$/i.test(f.output));
        const workers: number | 'auto' = f.workers === undefined ? 'auto' : parsePositiveInt(f.workers, '--workers', 64);
        const target = await ctx.target();
        const { exportData } = await import('../export/export.js');
        const r = await exportData(
          target,
          { table: f.table, query, format, header: f.header, gzip, output: f.output, workers },
          {
            stdout: ctx.io.stdout,
            progress: (label) => ctx.progress(label, undefined),
            warn: (m) => ctx.warn(m),
            ...(ctx.io.interrupt !== undefined ? { signal: ctx.io.interrupt() } : {}),
          },
        );
        if (!r.truncatedByReader && toFile) {
          const rate = formatCount(r.rows / Math.max(r.seconds, 1e-3));
          ctx.note(`exported ${formatCount(r.rows)} rows (${formatBytes(r.bytes)}) to ${f.output} in ${r.seconds.toFixed(1)} s (${rate} rows/s)`);
        }
        return EXIT_OK;
      }),
    );
}
