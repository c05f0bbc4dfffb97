/**
 * doc-get: stream a document back, verified. Chunks are fetched ahead over `workers` connections with
 * `COPY (SELECT …) TO STDOUT (FORMAT binary)`: bytea in text mode travels as hex (twice the bytes, and
 * decoded in Node), and node-postgres has no binary-result path that hands back a Buffer. Each chunk's
 * SHA-256 is checked before it is written; the whole document's SHA-256, size and chunk list after.
 * A file output is written under a temporary name and renamed only once all of that has passed.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { DataioError } from '../errors.js';
import { isBrokenPipe, openOutput, type Output } from '../io/output.js';
import { connectClient, hangUp, type ConnectionTarget } from '../pg/connect.js';
import { quoteLiteral } from '../pg/ident.js';
import { mapQueryError } from '../pg/pg-errors.js';
import type { Progress } from '../progress/progress.js';
import { BinaryCopyParser, type CopyRow } from './binary-copy.js';
import { fetchAhead } from './bounded.js';
import { DocumentLease } from './leases.js';
import { ClientPool } from './pool.js';
import { CHUNKS, ensureSchema } from './schema.js';
import { loadDocument, notFound, requireComplete, resolveDocument, type DocumentInfo, type Resolved } from './store.js';

/** Bytes one COPY fetches: small chunks share a round trip, a big chunk comes alone. */
export const FETCH_BYTES = 4 * 1024 * 1024;
/**
 * Fetched bytes held at once, whatever --workers says. Measured on 512 MiB (4 workers): fetching
 * 2 × workers ahead was no faster than 1 × workers and took 50 MB more peak RSS.
 */
export const MAX_AHEAD_BYTES = 64 * 1024 * 1024;

export interface GetOptions {
  /** An id or a name. */
  ref: string;
  /** A path, or `-` for stdout. */
  output: string;
  stdout?: Writable | undefined;
  workers: number;
}

export interface GetHooks {
  progress(total: number): Progress;
  /** Which document the reference picked, before any byte is written. */
  resolved(r: Resolved): void;
}

export interface GetResult {
  doc: DocumentInfo;
  bytes: number;
  seconds: number;
  /** The reader of stdout went away before the end (`| head -c`). */
  truncatedByReader: boolean;
}

export interface FetchedChunk {
  seq: number;
  sha256: Buffer;
  data: Buffer;
}

export function fetchSql(doc: string, from: number, to: number): string {
  // COPY takes no parameters; the id is a uuid read from the catalog table, quoted all the same.
  // One chunk (chunks of 4 MB and more) by equality: on Citus, where chunks are distributed by seq,
  // that reaches the one shard holding it, where a range would ask every shard (4 times slower).
  const seqs = to - from === 1 ? `seq = ${from}` : `seq >= ${from} AND seq < ${to}`;
  return `COPY (SELECT seq, sha256, data FROM ${CHUNKS} WHERE doc = ${quoteLiteral(doc)} AND ${seqs} ORDER BY seq) TO STDOUT (FORMAT binary)`;
}

function toChunk(row: CopyRow): FetchedChunk {
  const [seq, sha256, data] = row;
  if (row.length !== 3 || !seq || seq.length !== 4 || !sha256 || !data) {
    throw new DataioError('DB_ERROR', `unexpected row shape from the chunk query (${row.length} fields)`);
  }
  return { seq: seq.readInt32BE(0), sha256, data };
}

async function fetchChunks(client: pg.Client, doc: string, from: number, to: number): Promise<FetchedChunk[]> {
  const parser = new BinaryCopyParser();
  const chunks: FetchedChunk[] = [];
  const stream = client.query(copyTo(fetchSql(doc, from, to)));
  for await (const piece of stream as AsyncIterable<Buffer>) for (const row of parser.push(piece)) chunks.push(toChunk(row));
  parser.end();
  return chunks;
}

export class IntegrityChecker {
  private readonly whole = createHash('sha256');
  private readonly ofChunks = createHash('sha256');
  private next = 0;
  private bytes = 0;

  constructor(
    private readonly doc: DocumentInfo,
    private readonly output: string,
  ) {}

  private fail(what: string): DataioError {
    const hint =
      this.output === 'stdout'
        ? 'the stored copy is damaged; what was written to stdout before this error is not to be trusted'
        : `the stored copy is damaged; ${this.output} was not written`;
    return new DataioError('INTEGRITY', `integrity check failed for document ${this.doc.id}: ${what}`, { hint });
  }

  /** Check one chunk in order; throws before the chunk can be written. */
  chunk(c: FetchedChunk): void {
    const { chunkSize } = this.doc;
    const count = this.doc.chunkCount ?? 0;
    if (c.seq !== this.next) throw this.fail(`chunk ${this.next} is missing`);
    const actual = createHash('sha256').update(c.data).digest();
    const from = c.seq * chunkSize;
    if (!actual.equals(c.sha256)) throw this.fail(`chunk ${c.seq} (bytes ${from}–${from + c.data.length - 1}) does not match its SHA-256`);
    const expected = c.seq < count - 1 ? chunkSize : (this.doc.size ?? 0) - from;
    if (c.data.length !== expected) throw this.fail(`chunk ${c.seq} holds ${c.data.length} bytes where ${expected} belong`);
    this.whole.update(c.data);
    this.ofChunks.update(c.sha256);
    this.next++;
    this.bytes += c.data.length;
  }

  /** After the last chunk: the count, the size and both document hashes. */
  finish(): void {
    const count = this.doc.chunkCount ?? 0;
    if (this.next !== count) throw this.fail(`chunk ${this.next} is missing (of ${count})`);
    if (this.bytes !== this.doc.size) throw this.fail(`${this.bytes} bytes read where ${this.doc.size ?? 0} were stored`);
    if (this.doc.chunksSha256 !== null && !this.ofChunks.digest().equals(this.doc.chunksSha256)) throw this.fail('the list of chunk hashes does not match the one stored');
    if (this.doc.sha256 === null || !this.whole.digest().equals(this.doc.sha256)) throw this.fail('the SHA-256 of the whole document does not match');
  }
}

async function* verifiedChunks(doc: DocumentInfo, pool: ClientPool, workers: number, check: IntegrityChecker, progress: Progress): AsyncGenerator<Buffer> {
  const count = doc.chunkCount ?? 0;
  const perFetch = Math.max(1, Math.floor(FETCH_BYTES / doc.chunkSize));
  const fetches = Math.ceil(count / perFetch);
  const inFlight = Math.max(1, Math.min(workers, Math.floor(MAX_AHEAD_BYTES / (perFetch * doc.chunkSize))));
  let bytes = 0;
  let chunks = 0;
  const ahead = fetchAhead(fetches, inFlight, (i) => pool.use((c) => fetchChunks(c, doc.id, i * perFetch, Math.min(count, (i + 1) * perFetch))));
  for await (const batch of ahead) {
    for (const c of batch) {
      check.chunk(c);
      bytes += c.data.length;
      progress.update({ bytes, rows: ++chunks });
      yield c.data;
    }
  }
  check.finish();
}

export async function getDocument(target: ConnectionTarget, o: GetOptions, hooks: GetHooks): Promise<GetResult> {
  const started = Date.now();
  const coordinator = await connectClient(target, 'dataio doc-get');
  const pool = new ClientPool(target, o.workers, 'dataio doc-get');
  let out: Output | undefined;
  let progress: Progress | undefined;
  let doc: DocumentInfo | undefined;
  let lease: DocumentLease | undefined;
  try {
    const resolved = await resolveDocument(coordinator, o.ref, 'newest');
    requireComplete(resolved.doc);
    // Tables of an earlier dataio take the readers' table first.
    await ensureSchema(coordinator);
    lease = await DocumentLease.take(coordinator, await DocumentLease.holder(coordinator), resolved.doc.id, 'reader', 'read');
    if (lease === undefined) throw notFound(o.ref);
    // Read again under the lease: doc-rm may have marked it between the lookup and the lease.
    doc = await loadDocument(coordinator, resolved.doc.id);
    if (doc === undefined) throw notFound(o.ref);
    requireComplete(doc);
    hooks.resolved({ doc, sameName: resolved.sameName });
    out = openOutput(o.output, o.stdout);
    // Wait for the temporary file to exist: an open error surfaces here, and an abort cannot race
    // the open and leave the file behind.
    if (o.output !== '-') await once(out.stream, 'ready');
    progress = hooks.progress(doc.size ?? 0);
    const check = new IntegrityChecker(doc, out.name);
    // highWaterMark 1 byte: hold no verified chunk beyond the one being written.
    const source = Readable.from(verifiedChunks(doc, pool, o.workers, check, progress), { objectMode: false, highWaterMark: 1 });
    await pipeline(source, out.stream);
    await out.commit();
    progress.stop();
    return { doc, bytes: doc.size ?? 0, seconds: (Date.now() - started) / 1000, truncatedByReader: false };
  } catch (err) {
    progress?.stop();
    await out?.abort();
    if (out?.name === 'stdout' && doc !== undefined && isBrokenPipe(err)) {
      return { doc, bytes: 0, seconds: (Date.now() - started) / 1000, truncatedByReader: true };
    }
    if (err instanceof DataioError) throw err;
    // Only the output's own error is a write failure (a lost socket has a syscall too).
    if (out !== undefined && out.stream.errored === err) {
      throw new DataioError('OUTPUT_WRITE', `cannot write ${out?.name ?? o.output}: ${(err as Error).message}`, { cause: err });
    }
    throw mapQueryError(err, { action: `doc-get of ${doc?.id ?? o.ref}` });
  } finally {
    await lease?.release().catch(() => undefined);
    await pool.close();
    hangUp(coordinator);
  }
}
