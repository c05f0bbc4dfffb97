/**
 * Opening an input: a file or `-` (stdin), gzip recognised by its magic bytes and decompressed in
 * stream. Yields Buffers; counts the raw bytes read so progress can show % of the file.
 */
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DataioError } from '../errors.js';
import { zlib } from '../lazy-builtin.js';
import type { SlabPool } from './slab-pool.js';

export const READ_CHUNK = 1024 * 1024;

export interface InputSource {
  /** For messages: the path, or "stdin". */
  name: string;
  /** Raw size in bytes when known (a regular file). */
  size: number | undefined;
  gzip: boolean;
  /** The decompressed bytes. */
  chunks: AsyncIterable<Buffer>;
  /** Raw (compressed) bytes read so far. */
  rawBytesRead(): number;
}

function readError(name: string, err: unknown): DataioError {
  if (err instanceof DataioError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR' || code === 'Z_NEED_DICT') {
    return new DataioError('INPUT_FORMAT', `${name} is not valid gzip data: ${(err as Error).message}`, {
      hint: 'the file looks gzip-compressed (it starts with 1f 8b) but is damaged or truncated',
      cause: err,
    });
  }
  return new DataioError('INPUT_READ', `cannot read ${name}: ${(err as Error).message}`, { cause: err });
}

export interface OpenInputOptions {
  /** false: hand out the bytes as they are, gzip or not (documents are stored byte for byte). */
  decompress?: boolean;
  /** When aborted, the input is closed, so a job waiting on a slow stdin stops at once. */
  signal?: AbortSignal;
  /**
   * Read a regular file into this pool's slabs (see slab-pool.ts) rather than into a new Buffer per
   * read. Not for stdin or pipes, which keep their stream (a read on a pipe can wait for ever, and
   * only a stream can be destroyed mid-read when the signal aborts).
   */
  pool?: SlabPool;
}

/** A regular file's bytes, read into pooled slabs, one slab a read. */
async function* pooledFile(path: string, pool: SlabPool, signal: AbortSignal | undefined): AsyncGenerator<Buffer> {
  const fh = await open(path, 'r');
  try {
    for (;;) {
      // A file read returns at once: checking between reads stops as promptly as destroying a stream.
      if (signal?.aborted) throw new DataioError('INTERRUPTED', `reading ${path} was interrupted`);
      const slab = pool.take();
      const { bytesRead } = await fh.read(slab, 0, slab.length, null);
      if (bytesRead === 0) {
        pool.untake(slab);
        return;
      }
      yield bytesRead === slab.length ? slab : slab.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

export async function openInput(path: string, stdin: Readable = process.stdin, options: OpenInputOptions = {}): Promise<InputSource> {
  const name = path === '-' ? 'stdin' : path;
  let size: number | undefined;
  let raw: Readable | AsyncIterable<Buffer>;
  if (path === '-') {
    raw = stdin;
  } else {
    try {
      const st = await stat(path);
      if (st.isDirectory()) throw new DataioError('INPUT_READ', `${path} is a directory, not a file`);
      if (st.isFile()) size = st.size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new DataioError('INPUT_NOT_FOUND', `input file not found: ${path}`, { hint: 'check the path, or use - to read stdin' });
      }
      throw readError(name, err);
    }
    raw = options.pool && size !== undefined ? pooledFile(path, options.pool, options.signal) : createReadStream(path, { highWaterMark: READ_CHUNK });
  }
  let rawBytes = 0;
  const source = raw;
  if (source instanceof Readable) {
    options.signal?.addEventListener('abort', () => source.destroy(new DataioError('INTERRUPTED', `reading ${name} was interrupted`)), { once: true });
  }
  const iterator = raw[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let first: IteratorResult<Buffer>;
  try {
    first = await iterator.next();
  } catch (err) {
    throw readError(name, err);
  }
  async function* rawChunks(): AsyncGenerator<Buffer> {
    try {
      if (first.done) return;
      rawBytes += first.value.length;
      yield first.value;
      for (;;) {
        const r = await iterator.next();
        if (r.done) return;
        rawBytes += r.value.length;
        yield r.value;
      }
    } catch (err) {
      throw readError(name, err);
    } finally {
      await iterator.return?.();
    }
  }
  const firstChunk = first.done ? undefined : first.value;
  const gzip = options.decompress !== false && firstChunk !== undefined && firstChunk.length >= 2 && firstChunk[0] === 0x1f && firstChunk[1] === 0x8b;
  let chunks: AsyncIterable<Buffer> = rawChunks();
  if (gzip) {
    const gunzip = zlib().createGunzip({ chunkSize: 256 * 1024 });
    const source = Readable.from(rawChunks(), { objectMode: false });
    pipeline(source, gunzip).catch(() => undefined); // the error reaches the reader through gunzip
    chunks = (async function* () {
      try {
        for await (const c of gunzip) yield c as Buffer;
      } catch (err) {
        throw readError(name, err);
      }
    })();
  }
  return { name, size, gzip, chunks, rawBytesRead: () => rawBytes };
}

/** An async chunk iterator that lets the prologue (header, sample) read ahead and put bytes back. */
export class ChunkReader {
  private readonly iterator: AsyncIterator<Buffer>;
  private readonly front: Buffer[] = [];
  private done = false;

  constructor(chunks: AsyncIterable<Buffer>) {
    this.iterator = chunks[Symbol.asyncIterator]();
  }

  async next(): Promise<Buffer | undefined> {
    const f = this.front.shift();
    if (f !== undefined) return f;
    if (this.done) return undefined;
    const r = await this.iterator.next();
    if (r.done) {
      this.done = true;
      return undefined;
    }
    return r.value;
  }

  unshift(buf: Buffer): void {
    if (buf.length > 0) this.front.unshift(buf);
  }

  async close(): Promise<void> {
    if (!this.done) {
      this.done = true;
      await this.iterator.return?.();
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    for (;;) {
      const c = await this.next();
      if (c === undefined) return;
      yield c;
    }
  }
}
