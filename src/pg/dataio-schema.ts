/**
 * The `dataio` schema, where dataio keeps its own tables (documents; the commit decisions of
 * all-or-nothing imports), made on first use.
 */
import type pg from 'pg';
import { DataioError } from '../errors.js';
import { isPgError } from './pg-errors.js';

export const SCHEMA = 'dataio';

/** The key space of dataio's advisory locks ('dat' + 1): keeps clear of locks other software takes. */
export const LOCK_SPACE = 0x64617431;

/**
 * Create the schema and `ddl` unless `present()` says they exist. Race-safe: `CREATE … IF NOT EXISTS`
 * alone is not (two sessions can both see "absent" and one then fails on the catalog's unique index,
 * SQLSTATE 23505), so creation happens under a transaction-scoped advisory lock; the second process
 * waits, then finds everything there. `purpose` completes "the dataio schema that …" in the error a
 * role without the privilege gets.
 */
export async function ensureDataioObjects(client: pg.Client, purpose: string, present: () => Promise<boolean>, ddl: readonly string[]): Promise<void> {
  // The common case takes no lock and needs no CREATE privilege.
  if (await present()) return;
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1, 0)', [LOCK_SPACE]);
    // CREATE SCHEMA checks the database's CREATE privilege even with IF NOT EXISTS, so a schema an
    // owner made for us is not touched: a role with rights on the schema alone can then proceed.
    const ns = await client.query<{ ok: boolean }>('SELECT to_regnamespace($1) IS NOT NULL AS ok', [SCHEMA]);
    if (ns.rows[0]?.ok !== true) await client.query(`CREATE SCHEMA IF NOT EXISTS ${SCHEMA}`);
    for (const sql of ddl) await client.query(sql);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    if (isPgError(err) && err.code === '42501') {
      throw new DataioError('DB_PERMISSION', `cannot create the ${SCHEMA} schema that ${purpose} in database ${client.database ?? '?'}: ${err.message}`, {
        hint: `ask the database owner to run: CREATE SCHEMA ${SCHEMA} AUTHORIZATION <your role>; (or to GRANT CREATE ON DATABASE)`,
        detail: `SQLSTATE ${err.code}`,
        cause: err,
      });
    }
    throw err;
  }
}
