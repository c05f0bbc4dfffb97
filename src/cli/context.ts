/**
 * What a command handler gets: the resolved Config and the two output streams. stdout carries data
 * only; everything meant for people goes to stderr.
 */
import chalk from 'chalk';
import { resolveConfig, type Config, type RawOptions } from '../config.js';
import type { ConnectionTarget } from '../pg/connect.js';
import { createProgress, type Progress } from '../progress/progress.js';

export interface CliIO {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
  uid: number;
  /**
   * For a job that can stop cleanly: returns a signal aborted on SIGINT/SIGTERM (the job then stops
   * and undoes what it did). Commands that never ask are simply ended by the signal.
   */
  interrupt?: () => AbortSignal;
}

/** A command's body: resolves to the exit code. */
export type Handler = (ctx: CommandContext, ...args: unknown[]) => Promise<number>;
/** Wraps a handler into a commander action (main.ts makes it; every command file takes it). */
export type Runner = (fn: Handler) => (...args: unknown[]) => Promise<void>;

export class CommandContext {
  readonly config: Config;
  readonly io: CliIO;

  constructor(raw: RawOptions, io: CliIO) {
    this.config = resolveConfig(raw, io.env, io.uid);
    this.io = io;
  }

  /** A warning: shown unless --quiet. */
  warn(message: string): void {
    if (!this.config.quiet) this.io.stderr.write(`${chalk.yellow('warning:')} ${message}\n`);
  }

  /** Something worth knowing (a summary, a server started): shown unless --quiet. */
  note(message: string): void {
    if (!this.config.quiet) this.io.stderr.write(`${message}\n`);
  }

  /** Resolve where to connect (starting the embedded server when that is the target). */
  async target(): Promise<ConnectionTarget> {
    // pg is loaded on first use, not at start-up.
    const { resolveTarget } = await import('../pg/connect.js');
    return resolveTarget(this.config, { note: (m) => this.note(m) });
  }

  progress(label: string, total: number | undefined, unit?: string): Progress {
    return createProgress({ mode: this.config.quiet ? 'none' : this.config.progress, label, total, stream: this.io.stderr, unit });
  }
}
