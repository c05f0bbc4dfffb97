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
import { ensureDataioObjects } from '../pg/dataio-schema.js';

export const DOCUMENTS = 'dataio.documents';
export const CHUNKS = 'dataio.chunks';

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

/** Create the schema and the document tables unless they exist (race-safe; see ensureDataioObjects). */
export async function ensureSchema(client: pg.Client): Promise<void> {
  await ensureDataioObjects(client, 'stores documents', () => schemaExists(client), TABLES_DDL);
}
