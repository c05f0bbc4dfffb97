/**
 * doc-put: store a file or stream as a document. The input is read once; each chunk is hashed and
 * handed to one of `workers` connections, which commit it on its own (so what is in stays in, and
 * a resume needs no other ledger than the chunk rows themselves; on Citus each chunk goes straight
 * to its shard, see chunk-routes.ts). The process holds the document's writer's lease throughout
 * (leases.ts). The document turns `complete` at the end, after the server has confirmed every chunk
 * is there and the whole file's SHA-256 is known.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type pg from 'pg';
import { DataioError, usage } from '../errors.js';
import { openInput, type InputSource } from '../io/input.js';
import { connectClient, hangUp, type ConnectionTarget } from '../pg/connect.js';
import { LEASE_COLUMNS, leaseParams, leaseValues, type Holder } from '../pg/lease.js';
import { mapQueryError } from '../pg/pg-errors.js';
import { citusInstalled } from '../pg/server.js';
import type { Progress } from '../progress/progress.js';
import { TaskWindow } from './bounded.js';
import { Chunker } from './chunker.js';
import { DocumentLease, RELEASED } from './leases.js';
import { chunkRoutes, type ChunkRoutes } from './chunk-routes.js';
import { StoredChunks } from './stored-chunks.js';
import { CHUNKS, DOCUMENTS, ensureSchema } from './schema.js';
import { loadDocument, notFound, type DocumentInfo } from './store.js';

/** Measured on 512 MiB (bench/docs.mjs): see the README. */
import { DEFAULT_CHUNK_SIZE } from './defaults.js';
export const MIN_CHUNK_SIZE = 64 * 1024;
export const MAX_CHUNK_SIZE = 64 * 1024 * 1024;
/** Chunks held at once are about workers + 2 (the window, the one being filled, the one waiting). */
export const MAX_PUT_MEMORY = 192 * 1024 * 1024;

export interface PutOptions {
  /** A path, or `-` for stdin. */
  input: string;
  stdin?: Readable | undefined;
  name?: string | undefined;
  contentType?: string | undefined;
  chunkSize?: number | undefined;
  workers: number;
  /** The id of an interrupted upload of the same input to finish. */
  resume?: string | undefined;
}

export interface PutHooks {
  progress(total: number | undefined): Progress;
  /** The document exists (or was found, for a resume) and its upload begins. */
  started(doc: DocumentInfo): void;
}

export interface PutResult {
  id: string;
  name: string | null;
  size: number;
  chunks: number;
  /** Chunks sent by this run; the rest were already stored (a resume). */
  sent: number;
  reused: number;
  sha256: string;
  seconds: number;
}

export function checkPutLimits(chunkSize: number, workers: number): void {
  if (chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) {
    throw usage(`--chunk-size must be between 64KB and 64MB, not ${chunkSize} bytes`, 'chunks of 1MB–8MB work best (the default is 4MB)');
  }
  if ((workers + 2) * chunkSize > MAX_PUT_MEMORY) {
    throw usage(`--workers ${workers} with --chunk-size ${chunkSize} would hold about ${Math.round(((workers + 2) * chunkSize) / 2 ** 20)} MB of chunks in memory`, 'use fewer workers or smaller chunks');
  }
}

function mismatch(doc: DocumentInfo, input: string, why: string): DataioError {
  return new DataioError('INTEGRITY', `${input} is not the input whose upload ${doc.id} was interrupted: ${why}`, {
    hint: 'give --resume the same file (or stdin bytes) as the first run, or start a new upload without --resume',
  });
}

interface Opened {
  doc: DocumentInfo;
  lease: DocumentLease;
}

async function createDocument(client: pg.Client, holder: Holder, o: PutOptions, input: InputSource, chunkSize: number): Promise<Opened> {
  // The id is made here rather than by the server so it is known before anything is written. The row
  // is born with our writer's lease in it.
  const id = randomUUID();
  const name = o.name ?? (o.input === '-' ? null : (o.input.split(/[\\/]/).pop() ?? null));
  await client.query(`INSERT INTO ${DOCUMENTS} (id, name, content_type, size, chunk_size, state, ${LEASE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, 'uploading', ${leaseValues(6)})`, [
    id,
    name,
    o.contentType ?? null,
    input.size ?? null,
    chunkSize,
    ...leaseParams(holder),
  ]);
  const lease = DocumentLease.ofNew(client, holder, id);
  const doc = await loadDocument(client, id);
  if (doc === undefined) throw new DataioError('INTERNAL', `document ${id} vanished right after it was created`);
  return { doc, lease };
}

async function openResume(client: pg.Client, holder: Holder, o: PutOptions, input: InputSource, id: string): Promise<Opened> {
  if ((await loadDocument(client, id)) === undefined) throw notFound(id);
  const lease = await DocumentLease.take(client, holder, id, 'writer', 'resume the upload of');
  if (lease === undefined) throw notFound(id);
  try {
    return { doc: await checkResumable(client, o, input, id), lease };
  } catch (err) {
    await lease.release().catch(() => undefined);
    throw err;
  }
}

/** Under the writer's lease: the document is an upload in progress that this input and these options can finish. */
async function checkResumable(client: pg.Client, o: PutOptions, input: InputSource, id: string): Promise<DocumentInfo> {
  const doc = await loadDocument(client, id);
  if (doc === undefined) throw notFound(id);
  if (doc.state === 'complete') throw new DataioError('DOC_STATE', `document ${id} is already complete: there is nothing to resume`, { hint: `dataio doc-stat ${id}` });
  if (doc.state === 'deleting') throw new DataioError('DOC_STATE', `document ${id} is being deleted`, { hint: `dataio doc-rm ${id} finishes removing it` });
  if (o.chunkSize !== undefined && o.chunkSize !== doc.chunkSize) {
    throw usage(`--chunk-size ${o.chunkSize} differs from the ${doc.chunkSize} bytes the interrupted upload used`, 'leave --chunk-size out when resuming');
  }
  if (o.name !== undefined && o.name !== doc.name) throw usage(`--name differs from the interrupted upload's name ${JSON.stringify(doc.name)}`);
  if (o.contentType !== undefined && o.contentType !== doc.contentType) throw usage(`--content-type differs from the interrupted upload's ${JSON.stringify(doc.contentType)}`);
  if (doc.size !== null && input.size !== undefined && doc.size !== input.size) {
    throw mismatch(doc, input.name, `it is ${input.size} bytes, the interrupted upload ${doc.size}`);
  }
  return doc;
}

/**
 * Store one chunk, in a transaction of its own; true when stored now, false when it was already there
 * with this very content. The transaction commits with synchronous_commit off (SET LOCAL: nothing
 * stays on the connection): waiting for each WAL flush would serialise the chunks on the disk, and
 * losing the last few in a server crash is harmless, as a resume re-sends what is missing.
 */
async function insertChunk(client: pg.Client, table: string, doc: DocumentInfo, seq: number, sha: Buffer, data: Buffer): Promise<boolean> {
  await client.query('BEGIN; SET LOCAL synchronous_commit = off');
  try {
    // An unnamed statement (a named one would stay prepared on a pooled server connection). A Buffer
    // parameter travels in binary (pg marks it format 1): no hex doubling on the way in.
    const r = await client.query(`INSERT INTO ${table} (doc, seq, sha256, data) VALUES ($1, $2, $3, $4) ON CONFLICT (doc, seq) DO NOTHING`, [doc.id, seq, sha, data]);
    let stored = true;
    if (r.rowCount !== 1) {
      // Already there: a backend of a killed run can still commit a chunk after the resume looked.
      const have = await client.query<{ sha256: Buffer }>(`SELECT sha256 FROM ${table} WHERE doc = $1 AND seq = $2`, [doc.id, seq]);
      if (have.rows[0]?.sha256.equals(sha) !== true) throw new DataioError('INTEGRITY', `chunk ${seq} of document ${doc.id} is stored with other content than the input has`);
      stored = false;
    }
    await client.query('COMMIT');
    return stored;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

interface Totals {
  size: number;
  chunks: number;
  sha256: Buffer;
  chunksSha256: Buffer;
}

/**
 * The last step: check on the server that every chunk is in, then mark the document complete and give
 * the writer's lease back, if it is still ours. Two statements, not one transaction (on Citus a
 * reference-table update may not follow a parallel read of the chunks in one): the lease keeps every
 * other writer away in between, and the UPDATE's owner condition fails if ours lapsed and was taken.
 */
async function complete(client: pg.Client, doc: DocumentInfo, owner: string, t: Totals): Promise<void> {
  const r = await client.query<{ n: number; bytes: string; max: number }>(
    // length() of an uncompressed out-of-line bytea reads the TOAST pointer, not the data.
    `SELECT count(*)::int AS n, coalesce(sum(length(data)), 0)::bigint AS bytes, coalesce(max(seq), -1) AS max FROM ${CHUNKS} WHERE doc = $1`,
    [doc.id],
  );
  const s = r.rows[0];
  if (s === undefined || s.n !== t.chunks || s.max !== t.chunks - 1 || Number(s.bytes) !== t.size) {
    throw new DataioError('INTEGRITY', `document ${doc.id}: the server holds ${s?.n ?? 0} chunks (${s?.bytes ?? 0} bytes) where ${t.chunks} chunks (${t.size} bytes) were sent`);
  }
  // Chunks were committed with synchronous_commit off; this synchronous commit flushes the WAL up to
  // here, and so makes every one of them durable before we say "complete".
  const u = await client.query(
    `UPDATE ${DOCUMENTS} SET state = 'complete', size = $2, chunk_count = $3, sha256 = $4, chunks_sha256 = $5, completed_at = now(), ${RELEASED}
      WHERE id = $1 AND state = 'uploading' AND owner = $6`,
    [doc.id, t.size, t.chunks, t.sha256, t.chunksSha256, owner],
  );
  if (u.rowCount !== 1) {
    throw new DataioError('DOC_STATE', `document ${doc.id} stopped being this process's upload (was it removed, or its lease taken over after it lapsed?)`, {
      hint: `dataio doc-stat ${doc.id}`,
    });
  }
}

function withResumeHint(err: DataioError, o: PutOptions, doc: DocumentInfo): DataioError {
  if (err.code === 'INTEGRITY' || err.code === 'USAGE' || err.code === 'DOC_STATE') return err;
  const input = o.input === '-' ? '- (with the same bytes on stdin)' : o.input;
  return new DataioError(err.code, `${err.message} (document ${doc.id} is left incomplete)`, {
    hint: `finish it with: dataio doc-put ${input} --resume ${doc.id}`,
    detail: err.detail,
    cause: err.cause ?? err,
  });
}

export async function putDocument(target: ConnectionTarget, o: PutOptions, hooks: PutHooks): Promise<PutResult> {
  const started = Date.now();
  const requested = o.chunkSize ?? DEFAULT_CHUNK_SIZE;
  checkPutLimits(requested, o.workers);
  const input = await openInput(o.input, o.stdin, { decompress: false });
  const coordinator = await connectClient(target, 'dataio doc-put');
  let routes: ChunkRoutes | undefined;
  const window = new TaskWindow(o.workers);
  let doc: DocumentInfo | undefined;
  let lease: DocumentLease | undefined;
  let progress: Progress | undefined;
  const action = `doc-put of ${input.name}`;
  try {
    const citus = await citusInstalled(coordinator);
    await ensureSchema(coordinator, citus);
    const chunkRoute = (routes = await chunkRoutes(coordinator, target, o.workers, citus, 'dataio doc-put'));
    const holder = await DocumentLease.holder(coordinator);
    const opened = o.resume !== undefined ? await openResume(coordinator, holder, o, input, o.resume) : await createDocument(coordinator, holder, o, input, requested);
    ({ doc, lease } = opened);
    const current = doc;
    hooks.started(current);
    progress = hooks.progress(input.size);
    const stored = o.resume !== undefined ? await StoredChunks.open(coordinator, current.id) : undefined;
    const whole = createHash('sha256');
    const ofChunks = createHash('sha256');
    const chunker = new Chunker(current.chunkSize);
    // Chunks this run added below the highest one already stored: if a later stored chunk shows the
    // input is another file, these are taken out again so that the right file can still resume.
    const addedBelowStored: number[] = [];
    let seq = 0;
    let size = 0;
    let done = 0;
    let doneBytes = 0;
    let sent = 0;
    const report = (bytes: number) => {
      done++;
      doneBytes += bytes;
      progress?.update({ bytes: doneBytes, rows: done });
    };

    const handle = async (chunk: Buffer): Promise<void> => {
      const s = seq++;
      const sha = createHash('sha256').update(chunk).digest();
      whole.update(chunk);
      ofChunks.update(sha);
      size += chunk.length;
      const have = stored === undefined ? undefined : await stored.get(s);
      if (have !== undefined) {
        if (!have.equals(sha)) {
          await window.settle();
          await removeChunks(coordinator, current, addedBelowStored);
          throw mismatch(current, input.name, `its chunk ${s} (bytes ${s * current.chunkSize}–${s * current.chunkSize + chunk.length - 1}) differs from the one stored`);
        }
        report(chunk.length);
        return;
      }
      if (stored !== undefined && s < stored.highest) addedBelowStored.push(s);
      await window.add(async () => {
        if (await chunkRoute.use(s, (c, table) => insertChunk(c, table, current, s, sha, chunk))) sent++;
        report(chunk.length);
      });
    };

    for await (const piece of input.chunks) for (const chunk of chunker.push(piece)) await handle(chunk);
    const last = chunker.end();
    if (last !== undefined) await handle(last);
    await window.drain();

    if (stored !== undefined && stored.highest >= seq) {
      await removeChunks(coordinator, current, addedBelowStored);
      throw mismatch(current, input.name, `it has ${seq} chunks, but chunk ${stored.highest} is stored`);
    }
    if (current.size !== null && current.size !== size) {
      throw new DataioError('INPUT_READ', `${input.name} changed while it was read: ${current.size} bytes were expected, ${size} were read`);
    }
    const sha256 = whole.digest();
    await lease.stop();
    await complete(coordinator, current, holder.owner, { size, chunks: seq, sha256, chunksSha256: ofChunks.digest() });
    progress.stop();
    return { id: current.id, name: current.name, size, chunks: seq, sent, reused: seq - sent, sha256: sha256.toString('hex'), seconds: (Date.now() - started) / 1000 };
  } catch (err) {
    progress?.stop();
    await window.settle();
    const e = err instanceof DataioError ? err : mapQueryError(err, { action });
    throw doc === undefined ? e : withResumeHint(e, o, doc);
  } finally {
    // Given back at once on failure, so that a resume need not wait for it to lapse.
    await lease?.release().catch(() => undefined);
    await routes?.close();
    hangUp(coordinator);
  }
}

async function removeChunks(client: pg.Client, doc: DocumentInfo, seqs: number[]): Promise<void> {
  if (seqs.length > 0) await client.query(`DELETE FROM ${CHUNKS} WHERE doc = $1 AND seq = ANY($2::int[])`, [doc.id, seqs]);
}
