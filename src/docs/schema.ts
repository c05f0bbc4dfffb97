/**
 * Where documents live: the `dataio` schema, made on first use by doc-put.
 *
 * dataio.documents holds one row a document; dataio.chunks holds its bytes as bytea rows of
 * `chunk_size` bytes (the last one shorter), each with its own SHA-256. The data column is
 * `STORAGE EXTERNAL`: TOAST still moves it out of line, but pglz never tries to compress it (documents
 * are mostly compressed already, and pglz would spend CPU on every chunk to give up), and reading an
 * uncompressed TOAST value needs no decompression on the way out.
 */
import type pg from 'pg';
import { DataioError } from '../errors.js';
import { isPgError } from '../pg/pg-errors.js';

export const SCHEMA = 'dataio';
export const DOCUMENTS = 'dataio.documents';
export const CHUNKS = 'dataio.chunks';

/** The key space of dataio's advisory locks ('dat' + 1): keeps clear of locks other software takes. */
export const LOCK_SPACE = 0x64617431;

const TABLES_DDL = [
  `CREATE TABLE IF NOT EXISTS ${DOCUMENTS} (
     id            uuid PRIMARY KEY,
     name          text,
     content_type  text,
     -- NULL until complete when the input's size is not known up front (stdin).
     size          bigint CHECK (size >= 0),
     chunk_size    integer NOT NULL CHECK (chunk_size > 0),
     chunk_count   integer CHECK (chunk_count >= 0),
     -- SHA-256 of the whole document, and of the concatenated chunk hashes (lets the server check the
     -- chunk list without reading any data). Both set when the upload completes.
     sha256        bytea CHECK (length(sha256) = 32),
     chunks_sha256 bytea CHECK (length(chunks_sha256) = 32),
     state         text NOT NULL CHECK (state IN ('uploading', 'complete', 'deleting')),
     created_at    timestamptz NOT NULL DEFAULT now(),
     completed_at  timestamptz,
     CHECK (state <> 'complete' OR (size IS NOT NULL AND chunk_count IS NOT NULL AND sha256 IS NOT NULL AND completed_at IS NOT NULL))
   )`,
  `CREATE INDEX IF NOT EXISTS documents_name_idx ON ${DOCUMENTS} (name, created_at DESC)`,
  `CREATE TABLE IF NOT EXISTS ${CHUNKS} (
     doc    uuid NOT NULL REFERENCES ${DOCUMENTS} (id),
     seq    integer NOT NULL CHECK (seq >= 0),
     sha256 bytea NOT NULL CHECK (length(sha256) = 32),
     data   bytea NOT NULL,
     PRIMARY KEY (doc, seq)
   )`,
  `ALTER TABLE ${CHUNKS} ALTER COLUMN data SET STORAGE EXTERNAL`,
];

/** True when the dataio tables exist (reading commands never create anything). */
export async function schemaExists(client: pg.Client): Promise<boolean> {
  const r = await client.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL AS ok`, [DOCUMENTS, CHUNKS]);
  return r.rows[0]?.ok === true;
}

/**
 * Create the schema and tables unless they exist. Race-safe: `CREATE … IF NOT EXISTS` alone is not
 * (two sessions can both see "absent" and one then fails on the catalog's unique index, SQLSTATE
 * 23505), so creation happens under a transaction-scoped advisory lock; the second process waits,
 * then finds everything there.
 */
export async function ensureSchema(client: pg.Client): Promise<void> {
  // The common case takes no lock and needs no CREATE privilege.
  if (await schemaExists(client)) return;
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1, 0)', [LOCK_SPACE]);
    // CREATE SCHEMA checks the database's CREATE privilege even with IF NOT EXISTS, so a schema an
    // owner made for us is not touched: a role with rights on the schema alone can then proceed.
    const ns = await client.query<{ ok: boolean }>('SELECT to_regnamespace($1) IS NOT NULL AS ok', [SCHEMA]);
    if (ns.rows[0]?.ok !== true) await client.query(`CREATE SCHEMA IF NOT EXISTS ${SCHEMA}`);
    for (const sql of TABLES_DDL) await client.query(sql);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    if (isPgError(err) && err.code === '42501') {
      throw new DataioError('DB_PERMISSION', `cannot create the ${SCHEMA} schema that stores documents in database ${client.database ?? '?'}: ${err.message}`, {
        hint: `ask the database owner to run: CREATE SCHEMA ${SCHEMA} AUTHORIZATION <your role>; (or to GRANT CREATE ON DATABASE)`,
        detail: `SQLSTATE ${err.code}`,
        cause: err,
      });
    }
    throw err;
  }
}
