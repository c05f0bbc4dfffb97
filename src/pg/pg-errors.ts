/**
 * Mapping server and socket errors to DataioError, by SQLSTATE and errno (never by message text).
 */
import { DataioError, type ErrorCode } from '../errors.js';

/** The fields of pg's DatabaseError that we use (pg-protocol/src/messages.ts). */
export interface PgErrorFields {
  message: string;
  code?: string;
  detail?: string;
  hint?: string;
  where?: string;
  column?: string;
  table?: string;
  severity?: string;
}

export function isPgError(err: unknown): err is Error & PgErrorFields {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string' && 'severity' in err;
}

export function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && !/^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** Node's codes for a server certificate that does not check out (OpenSSL verify errors, host name). */
const TLS_VERIFY = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

export function mapConnectError(err: unknown, display: string): DataioError {
  if (err instanceof DataioError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const errno = errnoOf(err);
  const where = `cannot connect to ${display}`;
  if (isPgError(err)) {
    const code = err.code ?? '';
    if (code === '28P01' || code === '28000') {
      return new DataioError('DB_AUTH', `${where}: ${err.message}`, {
        hint: 'check the user and password (in --db, DATABASE_URL, PGPASSWORD or ~/.pgpass)',
        detail: `SQLSTATE ${code}`,
        cause: err,
      });
    }
    if (code === '3D000') {
      return new DataioError('DB_NOT_FOUND', `${where}: ${err.message}`, {
        hint: 'create it (createdb) or name another database',
        detail: `SQLSTATE ${code}`,
        cause: err,
      });
    }
    if (code === '53300') {
      return new DataioError('DB_UNREACHABLE', `${where}: the server has no free connections (${err.message})`, {
        hint: 'use fewer --workers, or raise max_connections',
        detail: `SQLSTATE ${code}`,
        cause: err,
      });
    }
    return new DataioError('DB_UNREACHABLE', `${where}: ${err.message}`, { detail: `SQLSTATE ${code}`, cause: err });
  }
  if (errno !== undefined && TLS_VERIFY.has(errno)) {
    return new DataioError('DB_UNREACHABLE', `${where}: the server certificate could not be verified (${message})`, {
      hint: 'check sslrootcert (or PGSSLROOTCERT): it must be the CA that signed the server certificate, and the host name must match the certificate',
      detail: errno,
      cause: err,
    });
  }
  if (/does not support SSL/i.test(message)) {
    // pg raises this one with no code: the server answered N to SSLRequest.
    return new DataioError('DB_UNREACHABLE', `${where}: the server does not accept TLS connections`, { hint: 'drop sslmode from the URL (or PGSSLMODE), or enable ssl on the server', cause: err });
  }
  const reason =
    errno === 'ECONNREFUSED'
      ? 'connection refused'
      : errno === 'ENOTFOUND' || errno === 'EAI_AGAIN'
        ? 'unknown host'
        : errno === 'ETIMEDOUT' || /timeout/i.test(errno ?? '')
          ? 'timed out'
          : message;
  return new DataioError('DB_UNREACHABLE', `${where}: ${reason}`, {
    hint: 'is the server running, and are --db / DATABASE_URL / PGHOST right?',
    detail: errno,
    cause: err,
  });
}

/** `COPY t, line 3, column score: "abc"` → { line: 3, column: 'score' } */
export function parseCopyWhere(where: string | undefined): { line?: number; column?: string } {
  if (!where) return {};
  const m = /COPY [^\n]*?, line (\d+)(?:, column ([^:\n]+))?/.exec(where);
  if (!m) return {};
  const out: { line?: number; column?: string } = { line: Number.parseInt(m[1] ?? '', 10) };
  if (m[2] !== undefined) out.column = m[2];
  return out;
}

/**
 * The same server error with its COPY context's "line N" replaced by `line` (a COPY that took several
 * batches counts its lines from its start; the batch that holds line N knows its own numbering). The
 * copy keeps the error's class, so it is still a server error to isPgError.
 */
export function withCopyLine<E extends Error & PgErrorFields>(err: E, line: number): E {
  const where = err.where?.replace(/(COPY [^\n]*?, line )(\d+)/, (_all, head: string) => `${head}${line}`);
  return Object.assign(Object.create(Object.getPrototypeOf(err) as object) as E, err, { message: err.message, stack: err.stack, where });
}

function codeForSqlstate(sqlstate: string): ErrorCode {
  if (sqlstate === '42P01') return 'TABLE_NOT_FOUND';
  if (sqlstate === '42703') return 'COLUMN_NOT_FOUND';
  if (sqlstate === '42P07') return 'TABLE_EXISTS';
  if (sqlstate === '42501') return 'DB_PERMISSION';
  const cls = sqlstate.slice(0, 2);
  if (cls === '22' || cls === '23') return 'DATA_ERROR';
  if (cls === '08') return 'DB_UNREACHABLE';
  return 'DB_ERROR';
}

export interface QueryErrorContext {
  /** What we were doing, e.g. "import into public.t". */
  action: string;
  /**
   * For COPY FROM: where the server's "line N" of this COPY is in the input, as words for the message
   * ("input line 12", "byte offset 345 (input line 3)") and as the input line.
   */
  locate?: (serverLine: number) => { text: string; line: number } | undefined;
  /** A better hint for bad values (class 22), e.g. when the types were inferred from a sample. */
  dataHint?: string;
}

/** A server error during a query or COPY, as one line naming the input line and column. */
export function mapQueryError(err: unknown, ctx: QueryErrorContext): DataioError {
  if (err instanceof DataioError) return err;
  if (err instanceof TypeError || err instanceof RangeError || err instanceof ReferenceError) {
    // A bug of ours, not a lost connection: say so (formatError turns INTERNAL into a report-it hint).
    return new DataioError('INTERNAL', `${ctx.action} failed: ${err.message}`, { hint: 'run again with --verbose for details, and report it as a bug', cause: err });
  }
  if (!isPgError(err)) {
    const errno = errnoOf(err);
    const message = err instanceof Error ? err.message : String(err);
    return new DataioError('DB_UNREACHABLE', `${ctx.action} failed: lost the connection to the server (${errno ?? message})`, {
      hint: 'check that the server is up, then run the command again',
      cause: err,
    });
  }
  const sqlstate = err.code ?? '';
  const where = parseCopyWhere(err.where);
  const at = where.line !== undefined ? ctx.locate?.(where.line) : undefined;
  const line = at?.line;
  const parts = [`${ctx.action} failed`];
  if (at !== undefined) parts.push(`at ${at.text}`);
  if (where.column !== undefined) parts.push(`column ${where.column}`);
  const msg = `${parts.join(', ')}: ${err.message}`;
  const info: { hint?: string; line?: number; detail: string; cause: unknown } = {
    detail: [`SQLSTATE ${sqlstate}`, err.detail, err.where].filter(Boolean).join('; '),
    cause: err,
  };
  const hint = (sqlstate.startsWith('22') ? ctx.dataHint : undefined) ?? err.hint ?? defaultHint(sqlstate);
  if (hint !== undefined) info.hint = hint;
  if (line !== undefined) info.line = line;
  return new DataioError(codeForSqlstate(sqlstate), msg, info);
}

function defaultHint(sqlstate: string): string | undefined {
  if (sqlstate === '42P01') return 'check the table name (schema.table), or pass --create to make it from the input';
  if (sqlstate === '42501') return 'the database role lacks the privilege; ask for it or use another role';
  if (sqlstate.startsWith('22')) return 'fix the value in the input, or load it into a text column';
  if (sqlstate === '23505') return 'the row duplicates a key already in the table';
  return undefined;
}
