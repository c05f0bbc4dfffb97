/**
 * doc-rm: remove a document. First it is marked `deleting` (so doc-get refuses it from then on, even
 * if removal stops half-way), then its chunks go in batches of bounded size, each batch a transaction
 * of its own: one DELETE of a terabyte would hold its locks, its WAL and its dead TOAST rows in a
 * single transaction for hours. The document row goes last. Rerunning doc-rm finishes a removal that
 * was interrupted.
 */
import { DataioError } from '../errors.js';
import { connectClient, hangUp, type ConnectionTarget } from '../pg/connect.js';
import { mapQueryError } from '../pg/pg-errors.js';
import type { Progress } from '../progress/progress.js';
import { DocumentLease } from './leases.js';
import { CHUNKS, DOCUMENTS, READERS, ensureSchema } from './schema.js';
import { loadDocument, notFound, resolveDocument, type DocumentInfo } from './store.js';

/** Chunk bytes removed per transaction. */
export const DELETE_BATCH_BYTES = 256 * 1024 * 1024;

export interface RmOptions {
  ref: string;
  batchBytes?: number | undefined;
}

export interface RmHooks {
  progress(totalBytes: number | undefined): Progress;
}

export interface RmResult {
  doc: DocumentInfo;
  chunks: number;
  batches: number;
  seconds: number;
}

export async function removeDocument(target: ConnectionTarget, o: RmOptions, hooks: RmHooks): Promise<RmResult> {
  const started = Date.now();
  const client = await connectClient(target, 'dataio doc-rm');
  let progress: Progress | undefined;
  let id: string | undefined;
  let lease: DocumentLease | undefined;
  try {
    const resolved = await resolveDocument(client, o.ref, 'unique');
    id = resolved.doc.id;
    await ensureSchema(client);
    // Waits for doc-get readers to finish; refuses while an upload of it is running.
    lease = await DocumentLease.take(client, await DocumentLease.holder(client), id, 'writer', 'remove');
    if (lease === undefined) throw notFound(o.ref);
    const doc = await loadDocument(client, id);
    if (doc === undefined) throw notFound(o.ref);
    await client.query(`UPDATE ${DOCUMENTS} SET state = 'deleting' WHERE id = $1`, [id]);
    const r = await client.query<{ max: number | null }>(`SELECT max(seq) AS max FROM ${CHUNKS} WHERE doc = $1`, [id]);
    const highest = r.rows[0]?.max ?? -1;
    const perBatch = Math.max(1, Math.floor((o.batchBytes ?? DELETE_BATCH_BYTES) / doc.chunkSize));
    progress = hooks.progress(doc.size ?? undefined);
    let chunks = 0;
    let batches = 0;
    for (let from = 0; from <= highest; from += perBatch) {
      // seq ranges walk the primary key; each statement commits on its own.
      const d = await client.query(`DELETE FROM ${CHUNKS} WHERE doc = $1 AND seq >= $2 AND seq < $3`, [id, from, from + perBatch]);
      chunks += d.rowCount ?? 0;
      batches++;
      progress.update({ bytes: Math.min(chunks * doc.chunkSize, doc.size ?? Infinity), rows: chunks });
    }
    // The row goes with our lease in it; readers' rows left by killed doc-gets go too.
    await lease.stop();
    await client.query(`DELETE FROM ${READERS} WHERE doc = $1`, [id]);
    await client.query(`DELETE FROM ${DOCUMENTS} WHERE id = $1`, [id]);
    progress.stop();
    return { doc, chunks, batches, seconds: (Date.now() - started) / 1000 };
  } catch (err) {
    progress?.stop();
    if (err instanceof DataioError) throw err;
    const e = mapQueryError(err, { action: `doc-rm of ${id ?? o.ref}` });
    if (id === undefined) throw e;
    throw new DataioError(e.code, `${e.message} (document ${id} is left half-removed)`, { hint: `run dataio doc-rm ${id} again to finish`, detail: e.detail, cause: e.cause });
  } finally {
    await lease?.release().catch(() => undefined);
    hangUp(client);
  }
}
