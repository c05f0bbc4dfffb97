/**
 * The one error type of dataio. Every failure a user can cause or meet is a DataioError with a code
 * from a closed set, a one-line message, and where possible a hint and the input position.
 * Exit codes are decided here and nowhere else (see exitCodeFor).
 */
export type ErrorCode =
  | 'USAGE' // bad flag or argument combination
  | 'INPUT_NOT_FOUND'
  | 'INPUT_READ'
  | 'INPUT_FORMAT' // input that cannot be read as the format it claims to be
  | 'OUTPUT_WRITE'
  | 'TABLE_NOT_FOUND'
  | 'TABLE_EXISTS'
  | 'COLUMN_NOT_FOUND'
  | 'DB_UNREACHABLE'
  | 'DB_AUTH'
  | 'DB_NOT_FOUND'
  | 'DB_PERMISSION'
  | 'DB_ERROR' // any other error the server reported
  | 'DATA_ERROR' // the server rejected a row of the input
  | 'EMBEDDED_SERVER' // the embedded PostgreSQL could not be set up or started
  | 'DOC_NOT_FOUND' // no stored document has that id or name
  | 'DOC_STATE' // the document exists but is in the wrong state (still uploading, being deleted, in use)
  | 'INTEGRITY' // stored or supplied bytes do not match their SHA-256
  | 'IMPORT_STATE' // a resumable import (--import-id) cannot go on as asked: other input or options, or running elsewhere
  | 'INTERRUPTED' // SIGINT or SIGTERM: the job stopped and undid what it had done
  | 'INTERNAL';

export interface ErrorInfo {
  hint?: string;
  /** 1-based input line the error is about, when known. */
  line?: number;
  /** Extra detail shown with --verbose (SQLSTATE, server detail, the underlying error). */
  detail?: string;
  cause?: unknown;
  /** Trying again may succeed (a lost connection, a server restarting). */
  transient?: boolean;
}

export class DataioError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly line: number | undefined;
  readonly detail: string | undefined;
  readonly transient: boolean;

  constructor(code: ErrorCode, message: string, info: ErrorInfo = {}) {
    super(message, info.cause === undefined ? undefined : { cause: info.cause });
    this.name = 'DataioError';
    this.code = code;
    this.hint = info.hint;
    this.line = info.line;
    this.detail = info.detail;
    this.transient = info.transient === true;
  }
}

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_REJECTED = 3;
/** As shells report a process ended by SIGINT (128 + 2). */
export const EXIT_INTERRUPTED = 130;

export function exitCodeFor(err: unknown): number {
  if (err instanceof DataioError && err.code === 'USAGE') return EXIT_USAGE;
  if (err instanceof DataioError && err.code === 'INTERRUPTED') return EXIT_INTERRUPTED;
  return EXIT_FAILED;
}

export function usage(message: string, hint?: string): DataioError {
  return new DataioError('USAGE', message, hint === undefined ? {} : { hint });
}

/** The one line shown to the user (plus hint), never a stack trace unless verbose. */
export function formatError(err: unknown, verbose: boolean): string {
  if (err instanceof DataioError) {
    const lines = [`error: ${err.message}`];
    if (err.hint) lines.push(`hint: ${err.hint}`);
    if (verbose) {
      if (err.detail) lines.push(`detail: ${err.detail}`);
      if (err.cause instanceof Error && err.cause.stack) lines.push(err.cause.stack);
      else if (err.stack) lines.push(err.stack);
    }
    return lines.join('\n');
  }
  const message = err instanceof Error ? err.message : String(err);
  const lines = [`error: internal error: ${message}`];
  if (verbose && err instanceof Error && err.stack) lines.push(err.stack);
  else lines.push('hint: run again with --verbose for details, and report it as a bug');
  return lines.join('\n');
}
