/**
 * Document rows: reading them, and turning what a user typed (an id or a name) into one document.
 *
 * Name rule (the same for doc-get and doc-stat): a name is like a tag that moves. It means the newest
 * *complete* document with that name, so `doc-put backup.tar --name nightly` every night and
 * `doc-get nightly` fetches last night's; when none with that name is complete, the newest one of any
 * state (so the error can say it is still uploading, with its id). doc-rm never guesses: a name that
 * matches several documents is refused with their ids. A string shaped like a UUID is an id.
 */
import type pg from 'pg';
import { DataioError } from '../errors.js';
import { DOCUMENTS, schemaExists } from './schema.js';

export type DocState = 'uploading' | 'complete' | 'deleting';

export interface DocumentInfo {
  id: string;
  name: string | null;
  contentType: string | null;
  /** Bytes; null while uploading from a stream whose size was not known up front. */
  size: number | null;
  chunkSize: number;
  chunkCount: number | null;
  sha256: Buffer | null;
  chunksSha256: Buffer | null;
  state: DocState;
  createdAt: Date;
  completedAt: Date | null;
}

export interface DocumentRow {
  id: string;
  name: string | null;
  content_type: string | null;
  size: string | null;
  chunk_size: number;
  chunk_count: number | null;
  sha256: Buffer | null;
  chunks_sha256: Buffer | null;
  state: DocState;
  created_at: Date;
  completed_at: Date | null;
}

export const DOCUMENT_COLUMNS = 'id, name, content_type, size, chunk_size, chunk_count, sha256, chunks_sha256, state, created_at, completed_at';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function looksLikeId(ref: string): boolean {
  return UUID_RE.test(ref);
}

export function toDocumentInfo(r: DocumentRow): DocumentInfo {
  return {
    id: r.id,
    name: r.name,
    contentType: r.content_type,
    // bigint arrives as text; sizes stay exact as numbers up to 8 PiB.
    size: r.size === null ? null : Number(r.size),
    chunkSize: r.chunk_size,
    chunkCount: r.chunk_count,
    sha256: r.sha256,
    chunksSha256: r.chunks_sha256,
    state: r.state,
    createdAt: r.created_at,
    completedAt: r.completed_at,
  };
}

export async function loadDocument(client: pg.Client, id: string): Promise<DocumentInfo | undefined> {
  if (!looksLikeId(id)) return undefined;
  const r = await client.query<DocumentRow>(`SELECT ${DOCUMENT_COLUMNS} FROM ${DOCUMENTS} WHERE id = $1`, [id]);
  const row = r.rows[0];
  return row === undefined ? undefined : toDocumentInfo(row);
}

/** Documents with this name, newest first. */
export async function documentsNamed(client: pg.Client, name: string): Promise<DocumentInfo[]> {
  const r = await client.query<DocumentRow>(`SELECT ${DOCUMENT_COLUMNS} FROM ${DOCUMENTS} WHERE name = $1 ORDER BY created_at DESC, id`, [name]);
  return r.rows.map(toDocumentInfo);
}

export interface Resolved {
  doc: DocumentInfo;
  /** How many documents carry the name that was given (0 when an id was given). */
  sameName: number;
}

export function notFound(ref: string): DataioError {
  return new DataioError('DOC_NOT_FOUND', `no stored document has the id or name ${JSON.stringify(ref)}`, {
    hint: 'dataio doc-ls lists the stored documents',
  });
}

/** An id or a name → one document, by the name rule above. */
export async function resolveDocument(client: pg.Client, ref: string, mode: 'newest' | 'unique'): Promise<Resolved> {
  if (!(await schemaExists(client))) throw notFound(ref);
  if (looksLikeId(ref)) {
    const doc = await loadDocument(client, ref);
    if (doc === undefined) throw notFound(ref);
    return { doc, sameName: 0 };
  }
  const named = await documentsNamed(client, ref);
  const first = named[0];
  if (first === undefined) throw notFound(ref);
  if (mode === 'unique' && named.length > 1) {
    throw new DataioError('USAGE', `${named.length} documents are named ${JSON.stringify(ref)}: ${named.map((d) => `${d.id} (${d.state}, ${d.createdAt.toISOString()})`).join(', ')}`, {
      hint: 'give the id of the one you mean',
    });
  }
  const doc = named.find((d) => d.state === 'complete') ?? first;
  return { doc, sameName: named.length };
}

/** What to tell someone who asks to read a document that is not complete. */
export function requireComplete(doc: DocumentInfo): void {
  if (doc.state === 'complete') return;
  if (doc.state === 'uploading') {
    throw new DataioError('DOC_STATE', `document ${doc.id}${doc.name === null ? '' : ` (${JSON.stringify(doc.name)})`} is not complete: its upload is unfinished or was interrupted`, {
      hint: `finish it with: dataio doc-put <the same file> --resume ${doc.id}   (or remove it: dataio doc-rm ${doc.id})`,
    });
  }
  throw new DataioError('DOC_STATE', `document ${doc.id} is being deleted`, { hint: `dataio doc-rm ${doc.id} finishes removing it` });
}
