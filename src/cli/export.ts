import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { DataioError, EXIT_OK, usage } from '../errors.js';
import { EXPORT_FORMATS } from '../export/sql.js';
import { formatBytes, formatCount } from '../progress/progress.js';
import { wrapParagraphs } from './help-text.js';
import { formatFromPath, nodesOption, parseChoice, parsePositiveInt } from './parse.js';
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
  nodes?: string;
  json?: boolean;
}

/** What a parallel export of a Citus distributed table guarantees: in --help and in the README. */
export const CITUS_EXPORT_HELP =
  'Citus: a distributed table is read shard by shard on the nodes that hold them (--nodes, as for import), ' +
  'over --workers connections (at least one a node), and written shard after shard, the header once. ' +
  'All shards on one node are read in one snapshot. Citus has no snapshot across nodes; dataio takes ' +
  "the nodes' snapshots while it holds pg_dist_transaction locked on every node, which keeps distributed " +
  '(two-phase) commits out: the export is then one consistent cut of the table, as on a single server. ' +
  'The lock needs a superuser (or a role granted UPDATE on pg_dist_transaction) and every node ' +
  'reachable; without it, a distributed transaction that is committing while the snapshots are taken ' +
  'may show in some shards and not in others (--json tells: consistentCut). Through the coordinator ' +
  '(--nodes none, --workers 1, a node out of reach, or --query) Citus reads each shard in a snapshot ' +
  'of its own, one after another: a transaction committing during the export may show in some shards ' +
  'and not others. For one consistent cut there, stop writes to the table while it runs. Reference ' +
  'and local tables are read through the coordinator over one connection.';

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
    .option('-w, --workers <n>', 'connections for a table, reading ctid ranges of one snapshot (Citus: shards) in parallel (default: one per CPU core for a server on this machine, else 4; 1 for a query)')
    .option('--nodes <nodes>', 'Citus: where the shards of a distributed table are read: auto (the nodes pg_dist_node lists, default), none (one stream through --db), or postgresql:// URLs separated by commas')
    .option('--json', 'print a summary as one JSON object on stderr (rows, bytes, streams, shards, nodes)')
    .addHelpText('after', () => `\n${wrapParagraphs(CITUS_EXPORT_HELP)}`)
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  $ dataio export --table people > people.csv\n' +
        '  $ dataio export --query "select id, name from people where id < 10" -o small.csv\n' +
        '  $ dataio export --table events -o events.ndjson.gz --workers 4\n' +
        '  $ dataio export --query-file report.sql --format ndjson | jq .name\n' +
        '  $ dataio export --table events --db postgresql://coordinator/app --workers 4 --json   # Citus: per shard',
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
        const nodes = nodesOption(f.nodes);
        const target = await ctx.target();
        const { exportData } = await import('../export/export.js');
        const r = await exportData(
          target,
          { table: f.table, query, format, header: f.header, gzip, output: f.output, workers, nodes },
          {
            stdout: ctx.io.stdout,
            progress: (label) => ctx.progress(label, undefined),
            warn: (m) => ctx.warn(m),
            ...(ctx.io.interrupt !== undefined ? { signal: ctx.io.interrupt() } : {}),
          },
        );
        if (f.json === true) {
          // stdout carries the data: the summary goes to stderr, even with --quiet (it was asked for).
          ctx.io.stderr.write(
            JSON.stringify({
              source: f.table ?? 'query',
              format,
              output: f.output,
              rows: r.rows,
              bytes: r.bytes,
              seconds: r.seconds,
              rowsPerSec: Math.round(r.rows / Math.max(r.seconds, 1e-3)),
              workers: r.workers,
              streams: r.streams,
              shards: r.shards ?? null,
              nodes: r.nodes,
              consistentCut: r.consistentCut ?? null,
              truncatedByReader: r.truncatedByReader,
              peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
            }) + '\n',
          );
        } else if (!r.truncatedByReader && toFile) {
          const rate = formatCount(r.rows / Math.max(r.seconds, 1e-3));
          ctx.note(`exported ${formatCount(r.rows)} rows (${formatBytes(r.bytes)}) to ${f.output} in ${r.seconds.toFixed(1)} s (${rate} rows/s)`);
        }
        return EXIT_OK;
      }),
    );
}
