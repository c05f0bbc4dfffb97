/**
 * One precedence chain, resolved once: --db > DATABASE_URL > libpq PG* variables > the embedded default.
 * Pure: takes the raw options and the environment, returns a Config; touches no process state.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { usage } from './errors.js';

export type ProgressMode = 'auto' | 'bar' | 'json' | 'none';
export const PROGRESS_MODES: readonly ProgressMode[] = ['auto', 'bar', 'json', 'none'];

export type DbTarget =
  | { kind: 'url'; url: string; source: '--db' | 'DATABASE_URL' }
  | { kind: 'pgenv' }
  | { kind: 'embedded' };

export interface Config {
  target: DbTarget;
  /** Where dataio keeps its own state, above all the embedded server's data directory. */
  home: string;
  progress: ProgressMode;
  quiet: boolean;
  verbose: boolean;
}

export interface RawOptions {
  db?: string | undefined;
  progress?: string | undefined;
  quiet?: boolean | undefined;
  verbose?: boolean | undefined;
}

/** libpq variables whose presence means "the user named a server". */
const PG_ENV_VARS = ['PGHOST', 'PGHOSTADDR', 'PGPORT', 'PGDATABASE', 'PGUSER', 'PGPASSWORD'] as const;

export function resolveTarget(db: string | undefined, env: NodeJS.ProcessEnv): DbTarget {
  if (db !== undefined && db !== '') return { kind: 'url', url: db, source: '--db' };
  const fromEnv = env['DATABASE_URL'];
  if (fromEnv) return { kind: 'url', url: fromEnv, source: 'DATABASE_URL' };
  if (PG_ENV_VARS.some((name) => env[name])) return { kind: 'pgenv' };
  return { kind: 'embedded' };
}

export function resolveHome(env: NodeJS.ProcessEnv, uid: number): string {
  const explicit = env['DATAIO_HOME'];
  if (explicit) return explicit;
  // The server runs as the `postgres` OS user when we are root, and root's home is not reachable by
  // that user, so root's state lives in a system directory.
  if (uid === 0) return '/var/lib/dataio';
  const xdg = env['XDG_DATA_HOME'];
  return join(xdg || join(homedir(), '.local', 'share'), 'dataio');
}

export function resolveConfig(raw: RawOptions, env: NodeJS.ProcessEnv, uid: number): Config {
  const progress = raw.progress ?? 'auto';
  if (!(PROGRESS_MODES as readonly string[]).includes(progress)) {
    throw usage(`--progress must be one of ${PROGRESS_MODES.join(', ')}, not '${progress}'`);
  }
  return {
    target: resolveTarget(raw.db, env),
    home: resolveHome(env, uid),
    progress: progress as ProgressMode,
    quiet: raw.quiet === true,
    verbose: raw.verbose === true,
  };
}
