import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { DataioError, EXIT_OK, usage } from '../errors.js';
import { exportData } from '../export/export.js';
import { formatBytes, formatCount } from '../progress/progress.js';
import { formatFromPath, parseChoice } from './parse.js';
import type { Runner } from './main.js';

interface ExportFlags {
  table?: string;
  query?: string;
  queryFile?: string;
  format?: string;
  output: string;
  header: boolean;
}

export function defineExport(program: Command, run: Runner): void {
  program
    .command('export')
    .summary('stream a table or query out as CSV')
    .description('Stream a table or a query out through COPY … TO STDOUT, to stdout or a file.')
    .option('-t, --table <name>', 'the table to export, as table or schema.table')
    .option('-q, --query <sql>', 'a query whose result to export')
    .option('--query-file <file>', 'read the query from a file')
    .option('-f, --format <format>', 'csv (default: from the -o extension, else csv)')
    .option('-o, --output <file>', 'output file, or - for stdout', '-')
    .option('--header', 'write a header line (default)', true)
    .option('--no-header', 'no header line')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  $ dataio export --table people > people.csv\n' +
        '  $ dataio export --query "select id, name from people where id < 10" -o small.csv',
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
        const sources = [f.table, query].filter((v) => v !== undefined).length;
        if (sources !== 1) throw usage('export needs exactly one of --table, --query or --query-file');
        const format = f.format !== undefined ? f.format : (f.output !== '-' ? formatFromPath(f.output) : undefined) ?? 'csv';
        parseChoice(format, ['csv'] as const, '--format');
        const target = await ctx.target();
        const r = await exportData(
          target,
          { table: f.table, query, format: 'csv', header: f.header, output: f.output },
          { progress: () => ctx.progress(`export`, undefined) },
        );
        if (!r.truncatedByReader && f.output !== '-') {
          ctx.note(`exported ${formatCount(r.rows)} rows (${formatBytes(r.bytes)}) to ${f.output} in ${r.seconds.toFixed(1)} s`);
        }
        return EXIT_OK;
      }),
    );
}
