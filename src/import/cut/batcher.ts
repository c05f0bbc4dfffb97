/**
 * Cuts a byte stream into batches of whole records, without copying: a batch is a list of slices of
 * the chunks as they were read. The cut is deterministic for given input bytes and batch size (it
 * does not depend on how the input was chunked): a batch ends at the first record end at or after
 * `batch start + batchSize`, so a record longer than a batch is kept whole. With `ramp`, the first
 * batches of the import aim lower (rampedBatchSize, by batch number).
 */
import type { SlabPool } from '../../io/slab-pool.js';
import { rampedBatchSize } from '../../workers.js';
import { countLines, type Eol, type Scanner } from './scanner.js';

/** Part of a batch joined from the ends of several small files (join-files.ts). */
export interface Segment {
  file: number;
  offset: number;
  endOffset: number;
  firstLine: number;
  lines: number;
}

export interface Batch {
  /** 0-based sequence number (over all the import's inputs). */
  index: number;
  /** The input file it comes from (0-based). */
  file: number;
  chunks: Buffer[];
  bytes: number;
  /** Byte offset of the batch's first byte in the (decompressed) input. */
  offset: number;
  /** Byte offset just after the batch. */
  endOffset: number;
  /** 1-based input line of the batch's first record. */
  firstLine: number;
  /** Line terminators inside the batch. */
  lines: number;
  /**
   * A batch joined from the ends of several small files: its parts, in order. Its file, offset and
   * firstLine are then the first part's, its endOffset the last part's (in the last part's file).
   */
  segments?: readonly Segment[];
  /**
   * A file's last batch that does not end where a record ends (inside a quoted field, or without a
   * final line ending): nothing may follow it in a COPY.
   */
  endsInside?: boolean;
  /**
   * Call once the batch's bytes are no longer needed (its COPY completed), so the read buffers they
   * live in can be reused; never while anything may still read them. Calling it again does nothing.
   */
  release?: () => void;
}

export interface BatcherOptions {
  batchSize: number;
  /** The import's first batches smaller (rampedBatchSize): not for an import whose ledger keys batches by where they begin. */
  ramp?: boolean;
  scanner: Scanner;
  eol: Eol | null;
  /** Offset and line number of the first byte given to push() (after a header, say). */
  startOffset: number;
  startLine: number;
  /** The pool the chunks were read into, if any: batches then hold references to its slabs. */
  pool?: SlabPool | undefined;
  /** The input file (0-based) and the sequence number of its first batch, with several inputs. */
  file?: number;
  firstIndex?: number;
}

export class Batcher {
  private readonly batchSize: number;
  private readonly ramp: boolean;
  private readonly scanner: Scanner;
  private readonly eol: Eol | null;
  private readonly pool: SlabPool | undefined;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Absolute offset of the first byte of the next push(). */
  private consumed: number;
  private batchStart: number;
  private nextLine: number;
  private index: number;
  private readonly file: number;

  constructor(o: BatcherOptions) {
    this.batchSize = Math.max(1, o.batchSize);
    this.ramp = o.ramp === true;
    this.scanner = o.scanner;
    this.eol = o.eol;
    this.pool = o.pool;
    this.consumed = o.startOffset;
    this.batchStart = o.startOffset;
    this.nextLine = o.startLine;
    this.index = o.firstIndex ?? 0;
    this.file = o.file ?? 0;
  }

  /**
   * Feed the next chunk; yields the batches it completes (often none), each as soon as it is cut: the
   * first batch of a large chunk goes out before the rest of the chunk is scanned (its lines counted),
   * which on a fresh process, with the scanning code not yet optimised, took 5-9 ms per MiB here.
   */
  *push(chunk: Buffer): Generator<Batch> {
    // Hold the chunk's slab while we cut it, so a batch released meanwhile cannot free it.
    this.pool?.retain(chunk);
    try {
      const chunkStart = this.consumed;
      let from = 0;
      while (from < chunk.length) {
        const hunt = Math.max(from, this.batchStart + rampedBatchSize(this.batchSize, this.index, this.ramp) - chunkStart);
        if (hunt >= chunk.length) {
          this.scanner.skip(chunk, from, chunk.length);
          this.add(chunk, from, chunk.length);
          break;
        }
        this.scanner.skip(chunk, from, hunt);
        const end = this.scanner.findEnd(chunk, hunt);
        if (end === -1) {
          this.add(chunk, from, chunk.length);
          break;
        }
        this.add(chunk, from, end);
        from = end;
        yield this.emit();
      }
      this.consumed += chunk.length;
    } finally {
      this.pool?.release(chunk);
    }
  }

  /** At end of input: the last batch, if any bytes are left. */
  end(): Batch | undefined {
    return this.pendingBytes > 0 ? this.emit() : undefined;
  }

  /** True when the input ended inside a quoted field (PostgreSQL will reject it). */
  get inQuote(): boolean {
    return this.scanner.inQuote;
  }

  private add(chunk: Buffer, from: number, to: number): void {
    if (to <= from) return;
    const piece = from === 0 && to === chunk.length ? chunk : chunk.subarray(from, to);
    this.pool?.retain(piece);
    this.pending.push(piece);
    this.pendingBytes += to - from;
  }

  private emit(): Batch {
    let lines = 0;
    for (const c of this.pending) lines += countLines(c, this.eol);
    const batch: Batch = {
      index: this.index++,
      file: this.file,
      chunks: this.pending,
      bytes: this.pendingBytes,
      offset: this.batchStart,
      endOffset: this.batchStart + this.pendingBytes,
      firstLine: this.nextLine,
      lines,
    };
    const pool = this.pool;
    if (pool !== undefined) {
      const chunks = this.pending;
      let released = false;
      batch.release = () => {
        if (released) return;
        released = true;
        for (const c of chunks) pool.release(c);
      };
    }
    this.batchStart += this.pendingBytes;
    this.nextLine += lines;
    this.pending = [];
    this.pendingBytes = 0;
    return batch;
  }
}
