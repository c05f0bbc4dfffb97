/**
 * The statement that moves a staging table's rows into the import's table, in the final transaction:
 * a plain INSERT … SELECT, or an upsert. Pure: SQL from names, unit-tested as text.
 *
 * Upsert: when the input holds a key more than once, the last occurrence in input order wins (DISTINCT
 * ON the key, ordered by the key and the input position descending); the rows arrive sorted by the key,
 * which makes the index work sequential (measured here with psql: ORDER BY key more than halves an
 * ON CONFLICT upsert's time). `nothing` keeps the table's row for a key it has; `update` overwrites
 * its other columns with the input's.
 */
import { DataioError } from '../../errors.js';
import { quoteIdent } from '../../pg/ident.js';
import { isPgError, mapQueryError } from '../../pg/pg-errors.js';
import type { OnConflict } from '../options.js';

/** Columns a staging table adds for the input position of each row: the batch, then the row in it. */
export const POSITION_COLUMNS = ['dataio_batch', 'dataio_row'] as const;

export interface MoveSpec {
  target: string;
  staging: string;
  /** The columns the input sets (the staging table's, positions aside). */
  columns: readonly string[];
  onConflict: OnConflict;
  /** The key an upsert matches by (onConflict nothing/update). */
  key?: readonly string[] | undefined;
  /**
   * Move only the staged rows this condition selects (on the staging table, as `s`): a part of the
   * move (move-skipping.ts). An upsert then still takes only a key's last row of the whole input.
   */
  where?: string | undefined;
}

export function moveSql(m: MoveSpec): string {
  const cols = m.columns.map(quoteIdent).join(', ');
  const part = m.where === undefined ? '' : ` WHERE ${m.where}`;
  if (m.onConflict === 'error') return `INSERT INTO ${m.target} (${cols}) SELECT ${cols} FROM ${m.staging} s${part}`;
  const key = (m.key ?? []).map(quoteIdent);
  if (key.length === 0) throw new Error('moveSql: an upsert needs a key');
  const position = POSITION_COLUMNS.map((c) => `${c} DESC`).join(', ');
  const [b, r] = POSITION_COLUMNS;
  const later =
    m.where === undefined
      ? ''
      : ` AND NOT EXISTS (SELECT 1 FROM ${m.staging} l WHERE ${key.map((k) => `l.${k} = s.${k}`).join(' AND ')} AND (l.${b}, l.${r}) > (s.${b}, s.${r}))`;
  const latest = `SELECT DISTINCT ON (${key.join(', ')}) ${cols} FROM ${m.staging} s${part}${later} ORDER BY ${key.join(', ')}, ${position}`;
  const others = m.columns.filter((c) => !(m.key ?? []).includes(c));
  const action = m.onConflict === 'nothing' || others.length === 0 ? 'DO NOTHING' : `DO UPDATE SET ${others.map((c) => `${quoteIdent(c)} = excluded.${quoteIdent(c)}`).join(', ')}`;
  return `INSERT INTO ${m.target} (${cols}) ${latest} ON CONFLICT (${key.join(', ')}) ${action}`;
}

/** A failure of the final move (or of publishing a staging table) as the one line the user reads. */
export function moveFailure(err: unknown, o: { table: string; key: readonly string[] | undefined; publishing: boolean }): unknown {
  if (!isPgError(err)) return err;
  if (o.publishing && err.code === '42P07') {
    return new DataioError('TABLE_EXISTS', `table ${o.table} was created by someone else while this import loaded it: nothing was loaded`, {
      hint: 'drop --create to load into it, or choose another --table',
      cause: err,
    });
  }
  if (err.code === '42P10') {
    return new DataioError('USAGE', `--key ${(o.key ?? []).join(',')} is not a unique key of ${o.table}: ${err.message}`, {
      hint: 'an upsert needs a primary key or a unique index on exactly the --key columns',
      cause: err,
    });
  }
  const e = mapQueryError(err, { action: `import into ${o.table}` });
  const hint =
    err.code === '23505'
      ? 'the input holds a key the table has already, or the same key twice: --on-conflict update|nothing merges such rows, --on-error skip sets them aside'
      : e.hint;
  return new DataioError(e.code, e.message.replace(' failed: ', ' failed when moving the loaded rows into the table (nothing was loaded): '), {
    ...(hint !== undefined ? { hint } : {}),
    ...(e.detail !== undefined ? { detail: e.detail } : {}),
    cause: err,
  });
}
