/**
 * The dataio command line: commander wiring only. Each command turns flags into options and calls a
 * library function; exit codes are decided here, from the result or from the error's code.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { PROGRESS_MODES, type RawOptions } from '../config.js';
import { EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, exitCodeFor, formatError } from '../errors.js';
import { outputError } from '../io/output-error.js';
import { removePendingTemporaryFiles } from '../io/temporary-files.js';
import { CommandContext, type CliIO, type Runner } from './context.js';
import { commandName } from './parse.js';
import { defineDb } from './db.js';
import { defineDocs } from './docs.js';
import { defineExport } from './export.js';
import { defineImport } from './import.js';
import { defineSetup } from './setup.js';

/** dataio's version, from its package.json (found upwards: this file may be dist/src/cli or the bundle in dist). */
function version(): string {
  for (let dir = new URL('.', import.meta.url); ; dir = new URL('..', dir)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'dataio') return pkg.version ?? '0.0.0';
    } catch {
      // no package.json here: look further up
    }
    if (dir.pathname === '/') return '0.0.0';
  }
}

/** Each command's definer, by the names it defines. */
const DEFINERS: readonly [readonly string[], (program: Command, run: Runner) => void][] = [
  [['import'], defineImport],
  [['export'], defineExport],
  [['doc-put', 'doc-get', 'doc-ls', 'doc-stat', 'doc-rm'], defineDocs],
  [['db'], defineDb],
  [['setup'], defineSetup],
];

/**
 * The command line. With `args`, only the command they name is defined (every command when they name
 * none: `dataio --help`, a mistyped name that commander then suggests a name for): defining them all,
 * with their options and help texts, took 4 ms of every start-up here.
 */
export function buildProgram(io: CliIO, setExit: (code: number) => void, onContext: (ctx: CommandContext) => void, args?: readonly string[]): Command {
  const program = new Command('dataio');
  program
    .description('Bulk data in and out of PostgreSQL: parallel COPY import, streaming export, chunked documents.')
    .version(version(), '-V, --version')
    .option('--db <url>', 'PostgreSQL URL (else DATABASE_URL, else PG* variables, else the embedded server)')
    .addOption(new Option('--progress <mode>', 'progress on stderr: auto (a bar when stderr is a terminal), bar, json, none').choices(PROGRESS_MODES).default('auto'))
    .option('-q, --quiet', 'no progress, summaries or warnings on stderr (errors still show)')
    .option('-v, --verbose', 'more detail on errors (SQLSTATE, server detail, stack)')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  $ dataio import fixtures/people.csv --table people --create\n' +
        '  $ dataio export --table people\n' +
        '  $ dataio db status\n' +
        '\nExit codes: 0 done, 1 failed, 2 usage error, 3 done but some rows were rejected.',
    );

  const run: Runner = (fn) => async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command;
    const positional = args.slice(0, Math.max(0, args.length - 2));
    const opts = cmd.optsWithGlobals() as RawOptions & Record<string, unknown>;
    const ctx = new CommandContext(opts, io);
    onContext(ctx);
    setExit(await fn(ctx, ...positional, opts));
  };

  const valued = new Set(program.options.filter((o) => o.required || o.optional).flatMap((o) => [o.long, o.short].filter((f): f is string => f !== undefined)));
  const first = args === undefined ? undefined : commandName(args, valued);
  const named = DEFINERS.find(([names]) => first !== undefined && names.includes(first));
  for (const [, define] of named !== undefined ? [named] : DEFINERS) define(program, run);
  // Subcommands inherit the error handling and output routing.
  for (const c of program.commands) {
    c.exitOverride().configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) });
    c.showHelpAfterError(`(run dataio ${c.name()} --help for usage)`);
    for (const sub of c.commands) {
      sub.exitOverride().configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) });
    }
  }
  return program;
}

/** Run the CLI with the given arguments (without node and script); resolves to the exit code. */
export async function run(args: string[], io: CliIO): Promise<number> {
  let code = EXIT_OK;
  let ctx: CommandContext | undefined;
  const program = buildProgram(io, (c) => (code = c), (c) => (ctx = c), args);
  try {
    await program.parseAsync(args, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has already printed its message (and help, when asked for).
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT_OK;
      if (err.code === 'commander.executeSubCommandAsync') return EXIT_FAILED;
      return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    const verbose = ctx?.config.verbose ?? (args.includes('--verbose') || args.includes('-v'));
    io.stderr.write(formatError(err, verbose) + '\n');
    return exitCodeFor(err);
  }
}

export async function main(argv: string[]): Promise<void> {
  // Writing to a closed pipe (`dataio export | head`) must end quietly, not crash. A job that writes
  // to stdout (export, doc-get) listens too, and reports its own write failure (ENOSPC on `> file`)
  // as one line; only a failure no job hears of is reported here, as one line too, never a throw.
  let stdoutFailed = false;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE' || process.stdout.listenerCount('error') > 1 || stdoutFailed) return;
    stdoutFailed = true;
    process.stderr.write(formatError(outputError('stdout', err), false) + '\n');
    process.exitCode = EXIT_FAILED;
  });
  // For a job that asked (import), the first ^C (or a SIGTERM from cron or a supervisor) asks it to
  // stop and undo what it did; a second ^C quits at once (the server still rolls back every open
  // transaction). Other commands end at once, as without a handler.
  const interrupt = new AbortController();
  let graceful = false;
  const onSignal = () => {
    if (!graceful || interrupt.signal.aborted) process.exit(EXIT_INTERRUPTED);
    interrupt.abort();
    process.stderr.write('\ninterrupted: stopping cleanly (^C again to quit at once)\n');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // However the process ends, no temporary output file stays behind.
  process.on('exit', removePendingTemporaryFiles);
  const io: CliIO = {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    uid: typeof process.getuid === 'function' ? process.getuid() : 1,
    interrupt: () => {
      graceful = true;
      return interrupt.signal;
    },
  };
  const code = await run(argv.slice(2), io);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.exitCode = code === EXIT_OK && stdoutFailed ? EXIT_FAILED : code;
}
