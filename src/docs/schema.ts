/**
 * Where documents live: the `dataio` schema, made on first use by doc-put.
 *
 * dataio.documents holds one row a document; dataio.chunks holds its bytes as bytea rows of
 * `chunk_size` bytes (the last one shorter), each with its own SHA-256. The data column is
 * `STORAGE EXTERNAL`: TOAST still moves it out of line, but pglz never tries to compress it (documents
 * are mostly compressed already, and pglz would spend CPU on every chunk to give up), and reading an
 * uncompressed TOAST value needs no decompression on the way out.
 *
 * Who works on a document is kept in rows too (leases.ts): the writer's lease in the document's row,
 * each reader's in dataio.document_readers. Tables of an earlier dataio (which used advisory locks)
 * take the new columns and table when a command next needs them.
 *
 * On a Citus cluster (made on the coordinator): documents and readers are reference tables (a copy on
 * every node), and chunks is distributed by `seq`, so one document's chunks spread over the shards of
 * every worker. Plain tables an earlier dataio made there are distributed in place.
 */
import type pg from 'pg';
import { ensureDataioObjects } from '../pg/dataio-schema.js';
import { citusInstalled } from '../pg/server.js';
import { LEASE_COLUMNS_DDL } from '../pg/lease.js';

export const DOCUMENTS = 'dataio.documents';
export const CHUNKS = 'dataio.chunks';
export const READERS = 'dataio.document_readers';

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
     -- The writer's lease (doc-put, a resume, doc-rm): owner and expiry, renewed while it works.
     ${LEASE_COLUMNS_DDL},
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
  // One row per running doc-get: doc-rm and a resume wait for these to end (or lapse).
  `CREATE TABLE IF NOT EXISTS ${READERS} (doc uuid NOT NULL, ${LEASE_COLUMNS_DDL}, PRIMARY KEY (doc, owner))`,
];

/** The document table of an earlier dataio takes the lease columns. */
const MIGRATE = [
  `ALTER TABLE ${DOCUMENTS} ADD COLUMN IF NOT EXISTS owner text, ADD COLUMN IF NOT EXISTS lease_until timestamptz,
     ADD COLUMN IF NOT EXISTS holder_server text, ADD COLUMN IF NOT EXISTS holder_pid integer, ADD COLUMN IF NOT EXISTS holder_start timestamptz`,
];

const citusKind = (table: string, kind: string) => `NOT EXISTS (SELECT 1 FROM citus_tables WHERE table_name = '${table}'::regclass AND citus_table_type = '${kind}')`;

/**
 * On Citus: reference tables first (chunks' foreign key then points at one), then chunks spread by
 * seq. The coordinator's own copies of rows that were there before are emptied once distributed.
 */
const DISTRIBUTE = [
  // A reference table and a distributed table pointing at it, made in one transaction: Citus needs
  // one connection per node for that.
  `SET LOCAL citus.multi_shard_modify_mode TO 'sequential'`,
  `SELECT create_reference_table('${DOCUMENTS}') WHERE ${citusKind(DOCUMENTS, 'reference')}`,
  `SELECT create_reference_table('${READERS}') WHERE ${citusKind(READERS, 'reference')}`,
  `SELECT create_distributed_table('${CHUNKS}', 'seq') WHERE ${citusKind(CHUNKS, 'distributed')}`,
  `SELECT truncate_local_data_after_distributing_table('${CHUNKS}')`,
  `SELECT truncate_local_data_after_distributing_table('${READERS}')`,
  `SELECT truncate_local_data_after_distributing_table('${DOCUMENTS}')`,
];

/** True when the dataio tables exist (reading commands never create anything). */
export async function schemaExists(client: pg.Client): Promise<boolean> {
  const r = await client.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL AS ok`, [DOCUMENTS, CHUNKS]);
  return r.rows[0]?.ok === true;
}

/** The tables are there as this dataio needs them: with the lease columns and readers, and on Citus distributed. */
async function schemaCurrent(client: pg.Client, citus: boolean): Promise<boolean> {
  const r = await client.query<{ ok: boolean }>(
    `SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL AND to_regclass($3) IS NOT NULL
            AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'holder_start' AND NOT attisdropped)
            ${citus ? `AND EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = to_regclass($2) AND partmethod = 'h')` : ''} AS ok`,
    [DOCUMENTS, CHUNKS, READERS],
  );
  return r.rows[0]?.ok === true;
}

/**
 * Create (or bring up to date) the schema and the document tables unless they are current
 * (race-safe; see ensureDataioObjects). `citus` when known (dataio setup), else asked.
 */
export async function ensureSchema(client: pg.Client, citus?: boolean): Promise<void> {
  const onCitus = citus ?? (await citusInstalled(client));
  await ensureDataioObjects(client, 'stores documents', () => schemaCurrent(client, onCitus), [...TABLES_DDL, ...MIGRATE, ...(onCitus ? DISTRIBUTE : [])]);
}
