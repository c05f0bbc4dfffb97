/**
 * The `dataio` schema, where dataio keeps its own tables (documents; the commit decisions of
 * all-or-nothing imports), made on first use.
 */
import type pg from 'pg';
import { DataioError } from '../errors.js';
import { isPgError } from './pg-errors.js';

export const SCHEMA = 'dataio';

/** How the names of imports' staging tables (in the dataio schema) begin. */
export const STAGING_PREFIX = 'stage_';

/** dataio's table of two-phase commit decisions (import/commit/two-phase.ts), in SCHEMA. */
export const DECISIONS_TABLE = 'import_commits';
/** Its newest column: where it is, the table is as this dataio makes it. */
export const DECISIONS_PRESENT_COLUMN = 'holder_start';

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
  try {
    if (await present()) return;
  } catch (err) {
    // The schema is there, but this role may not look into it.
    if (isPgError(err) && err.code === '42501') throw await permissionError(client, purpose, err);
    throw err;
  }
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
    if (isPgError(err) && err.code === '42501') throw await permissionError(client, purpose, err);
    throw err;
  }
}

/**
 * What a role that may not make (or use) dataio's schema is told: the privilege it lacks, and the
 * one-time setup an owner runs for it (`dataio setup --grant ROLE`, see setup.ts).
 */
async function permissionError(client: pg.Client, purpose: string, err: Error & { code?: string }): Promise<DataioError> {
  const r = await client.query<{ role: string; schema: boolean }>('SELECT current_user AS role, to_regnamespace($1) IS NOT NULL AS schema', [SCHEMA]).catch(() => undefined);
  const role = r?.rows[0]?.role ?? '<your role>';
  const exists = r?.rows[0]?.schema === true;
  const what = exists ? `role ${role} may not use the ${SCHEMA} schema, which ${purpose}` : `role ${role} may not create the ${SCHEMA} schema, which ${purpose}`;
  return new DataioError('DB_PERMISSION', `${what} (in database ${client.database ?? '?'}): ${err.message}`, {
    hint: exists
      ? `ask its owner to run once: dataio setup --grant ${role}   (it grants USAGE and CREATE on schema ${SCHEMA} and rights on its tables)`
      : `ask the database owner to run once: dataio setup --grant ${role}   (or: CREATE SCHEMA ${SCHEMA} AUTHORIZATION ${role};)`,
    detail: `SQLSTATE ${err.code ?? '?'}`,
    cause: err,
  });
}
