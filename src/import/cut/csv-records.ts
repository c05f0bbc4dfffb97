/**
 * The records of a CSV / text-format batch one by one, for loading a failed batch again without its
 * bad rows (skip mode) and for the rejects file. Only built for a batch that failed.
 */
import type { BatchRecords } from './records.js';
import type { Batch } from './batcher.js';
import { countLines, makeScanner, type Dialect, type Eol } from './scanner.js';

export const EOL_BYTES: Record<Eol, Buffer> = { lf: Buffer.from('\n'), crlf: Buffer.from('\r\n'), cr: Buffer.from('\r') };

export class DelimitedRecords implements BatchRecords {
  private readonly buf: Buffer;
  private readonly offset: number;
  /** starts[i]: where record i begins in buf; starts[count] = buf.length. */
  private readonly starts: number[] = [0];
  /** lines[i]: the input line record i begins on; lines[count]: the line after the batch. */
  private readonly lines: number[];

  constructor(batch: Batch, dialect: Dialect, eol: Eol | null) {
    this.buf = batch.chunks.length === 1 ? (batch.chunks[0] as Buffer) : Buffer.concat(batch.chunks);
    this.offset = batch.offset;
    this.lines = [batch.firstLine];
    // The batch starts at a record boundary: a fresh scanner is in the right state.
    const scanner = makeScanner(dialect, eol ?? 'lf');
    let line = batch.firstLine;
    for (let pos = 0; pos < this.buf.length; ) {
      let end = scanner.findEnd(this.buf, pos);
      if (end === -1) end = this.buf.length;
      line += countLines(this.buf.subarray(pos, end), eol);
      this.starts.push(end);
      this.lines.push(line);
      pos = end;
    }
  }

  get count(): number {
    return this.starts.length - 1;
  }

  copyInput(a: number, b: number): Buffer[] {
    return [this.buf.subarray(this.starts[a], this.starts[b])];
  }

  /**
   * PostgreSQL counts physical lines (newlines inside quoted fields too) and names the last line of
   * the record it was reading: the record whose lines hold that line.
   */
  recordAtLine(a: number, b: number, serverLine: number): number | undefined {
    const line = (this.lines[a] as number) + serverLine - 1;
    let lo = a;
    let hi = b - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const first = this.lines[mid] as number;
      // A record without a line end (the last of the input) still has its one line.
      const after = Math.max(this.lines[mid + 1] as number, first + 1);
      if (line < first) hi = mid - 1;
      else if (line >= after) lo = mid + 1;
      else return mid;
    }
    return undefined;
  }

  /** Whether a record begins at byte `at` of the batch (the batch's end counts as one). */
  startsAt(at: number): boolean {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const start = this.starts[mid] as number;
      if (start === at) return true;
      if (start < at) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }

  rejectAt(i: number): { line: number; offset: number; raw: Buffer } {
    const start = this.starts[i] as number;
    // A copy: the batch's read buffers are reused once it is loaded, and a reject may wait longer.
    return { line: this.lines[i] as number, offset: this.offset + start, raw: Buffer.from(this.buf.subarray(start, this.starts[i + 1])) };
  }
}
