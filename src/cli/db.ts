import type { Command } from 'commander';
import { DataioError, EXIT_OK } from '../errors.js';
import type { CommandContext, Runner } from './context.js';

/** The embedded server's code, loaded only by the command that manages it (it loads node:child_process). */
async function embedded(): Promise<typeof import('../pg/embedded.js')> {
  return import('../pg/embedded.js');
}

function describeTarget(ctx: CommandContext): string | undefined {
  const t = ctx.config.target;
  if (t.kind === 'url') return `a database is named by ${t.source}`;
  if (t.kind === 'pgenv') return 'a database is named by PG* variables';
  return undefined;
}

export function defineDb(program: Command, run: Runner): void {
  const db = program
    .command('db')
    .summary('manage the embedded PostgreSQL used when no database is named')
    .description(
      'dataio uses an embedded PostgreSQL 18 when no database is named (no --db, DATABASE_URL or PG* ' +
        'variables). It starts on first use, keeps running for later calls, and keeps its data in ' +
        '$DATAIO_HOME (default ~/.local/share/dataio; /var/lib/dataio for root).',
    )
    .addHelpText('after', '\nExamples:\n  $ dataio db status\n  $ psql "$(dataio db url)"\n  $ dataio db stop');

  db.command('start')
    .description('start the embedded server (initialising it on first use)')
    .addHelpText('after', '\nExample:\n  $ dataio db start')
    .action(
      run(async (ctx) => {
        const r = await (await embedded()).ensureEmbedded(ctx.config.home);
        ctx.note(
          r.started
            ? `started the embedded PostgreSQL on ${r.connection.host}:${r.connection.port} (data in ${ctx.config.home})`
            : `the embedded PostgreSQL is already running on ${r.connection.host}:${r.connection.port}`,
        );
        return EXIT_OK;
      }),
    );

  db.command('stop')
    .description('stop the embedded server')
    .addHelpText('after', '\nExample:\n  $ dataio db stop')
    .action(
      run(async (ctx) => {
        const stopped = await (await embedded()).stopEmbedded(ctx.config.home);
        ctx.note(stopped ? 'stopped the embedded PostgreSQL' : 'the embedded PostgreSQL is not running');
        return EXIT_OK;
      }),
    );

  db.command('status')
    .description('say whether the embedded server runs, where, and which version')
    .option('--json', 'print the status as JSON on stdout')
    .addHelpText('after', '\nExample:\n  $ dataio db status')
    .action(
      run(async (ctx, flags) => {
        const e = await embedded();
        const st = await e.embeddedStatus(ctx.config.home);
        const version = await e.embeddedVersion().catch(() => 'unknown');
        const other = describeTarget(ctx);
        if ((flags as { json?: boolean }).json) {
          ctx.io.stdout.write(JSON.stringify({ ...st, version, home: ctx.config.home }) + '\n');
        } else {
          const lines = [
            st.running ? `running: yes, on 127.0.0.1:${st.port} (pid ${st.pid})` : `running: no${st.initialised ? '' : ' (not initialised yet)'}`,
            `version: PostgreSQL ${version}`,
            `data:    ${st.dataDir}`,
            `log:     ${st.logFile}`,
          ];
          if (other) lines.push(`note:    ${other}, so dataio does not use the embedded server now`);
          ctx.io.stdout.write(lines.join('\n') + '\n');
        }
        return EXIT_OK;
      }),
    );

  db.command('url')
    .description('print a connection URL for the embedded server that psql accepts (starting it if needed)')
    .addHelpText('after', '\nExample:\n  $ psql "$(dataio db url)" -c "\\dt"')
    .action(
      run(async (ctx) => {
        const e = await embedded();
        const r = await e.ensureEmbedded(ctx.config.home);
        if (r.started) ctx.note(`started the embedded PostgreSQL on ${r.connection.host}:${r.connection.port}`);
        const url = await e.embeddedUrl(ctx.config.home, r.connection);
        if (!url) throw new DataioError('EMBEDDED_SERVER', 'no URL for the embedded server');
        ctx.io.stdout.write(url + '\n');
        return EXIT_OK;
      }),
    );
}
