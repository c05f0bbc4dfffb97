/**
 * doc-ls and doc-stat: what is stored. For an upload that is not complete, what has arrived so far is
 * counted from the chunk rows (cheap: length() of an out-of-line bytea reads only its TOAST pointer).
 */
import type pg from 'pg';
import { CHUNKS, DOCUMENTS, schemaExists } from './schema.js';
import { DOCUMENT_COLUMNS, resolveDocument, toDocumentInfo, type DocState, type DocumentInfo, type DocumentRow, type Resolved } from './store.js';

export interface DocumentListing extends DocumentInfo {
  storedChunks: number;
  storedBytes: number;
}

/**
 * The listing query. What has arrived of an incomplete upload is summed in a subquery grouped by
 * document and joined (not a correlated subquery per row, which Citus refuses when chunks are
 * distributed and documents a reference table). `docs` narrows the documents looked at (SQL on d).
 */
function listingSql(docs: string, order = ''): string {
  const cols = DOCUMENT_COLUMNS.split(', ')
    .map((c) => `d.${c}`)
    .join(', ');
  return `SELECT ${cols},
            CASE WHEN d.state = 'complete' THEN d.chunk_count ELSE coalesce(c.n, 0) END AS stored_chunks,
            CASE WHEN d.state = 'complete' THEN d.size ELSE coalesce(c.bytes, 0) END AS stored_bytes
       FROM ${DOCUMENTS} d
       LEFT JOIN (SELECT doc, count(*)::int AS n, sum(length(data))::bigint AS bytes FROM ${CHUNKS}
                   WHERE doc IN (SELECT d.id FROM ${DOCUMENTS} d WHERE d.state <> 'complete' AND ${docs}) GROUP BY doc) c ON c.doc = d.id
      WHERE ${docs} ${order}`;
}

interface ListingRow extends DocumentRow {
  stored_chunks: number;
  stored_bytes: string;
}

function toListing(r: ListingRow): DocumentListing {
  return { ...toDocumentInfo(r), storedChunks: r.stored_chunks, storedBytes: Number(r.stored_bytes) };
}

/** Every document, oldest first (a database without the dataio schema simply has none). */
export async function listDocuments(client: pg.Client): Promise<DocumentListing[]> {
  if (!(await schemaExists(client))) return [];
  const r = await client.query<ListingRow>(listingSql('true', 'ORDER BY d.created_at, d.id'));
  return r.rows.map(toListing);
}

export async function statDocument(client: pg.Client, ref: string): Promise<{ listing: DocumentListing; sameName: number }> {
  const resolved: Resolved = await resolveDocument(client, ref, 'newest');
  const r = await client.query<ListingRow>(listingSql('d.id = $1'), [resolved.doc.id]);
  const row = r.rows[0];
  // Removed between the two queries: report it as stored a moment ago.
  const listing = row === undefined ? { ...resolved.doc, storedChunks: 0, storedBytes: 0 } : toListing(row);
  return { listing, sameName: resolved.sameName };
}

export interface DocumentJson {
  id: string;
  name: string | null;
  state: DocState;
  size: number | null;
  sha256: string | null;
  contentType: string | null;
  chunkSize: number;
  chunks: number | null;
  storedChunks: number;
  storedBytes: number;
  chunksSha256: string | null;
  createdAt: string;
  completedAt: string | null;
}

/** The machine-readable shape of doc-ls --json and doc-stat --json. */
export function documentJson(d: DocumentListing): DocumentJson {
  return {
    id: d.id,
    name: d.name,
    state: d.state,
    size: d.size,
    sha256: d.sha256?.toString('hex') ?? null,
    contentType: d.contentType,
    chunkSize: d.chunkSize,
    chunks: d.chunkCount,
    storedChunks: d.storedChunks,
    storedBytes: d.storedBytes,
    chunksSha256: d.chunksSha256?.toString('hex') ?? null,
    createdAt: d.createdAt.toISOString(),
    completedAt: d.completedAt?.toISOString() ?? null,
  };
}
