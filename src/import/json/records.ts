/**
 * Cutting JSON input into records: NDJSON by lines, a JSON array by its top-level elements. Both work
 * on decoded text fed in arbitrary pieces and call `record` with the source text of each record and
 * where it was (input line for NDJSON; byte offset and element index for arrays). Pure: no I/O.
 */
import { INCOMPLETE, JsonSyntaxError, scanValue, skipWs } from './scan.js';

export interface RecordPosition {
  /** 1-based input line of the record's start. */
  line: number;
  /** Byte offset of the record's start in the (decompressed) input. */
  offset: number;
}

/** Called for each record with its text, its input line and its byte offset (no object per record). */
export type RecordHandler = (text: string, line: number, offset: number) => void;

/** A malformed input, with where it is. */
export class JsonInputError extends Error {
  readonly line: number;
  readonly offset: number;
  constructor(message: string, line: number, offset: number) {
    super(message);
    this.name = 'JsonInputError';
    this.line = line;
    this.offset = offset;
  }
}

/** NDJSON: one value per line; blank lines are skipped. */
export class NdjsonCutter {
  private rest = '';
  private line = 1;
  private offset = 0;
  private readonly record: RecordHandler;

  constructor(record: RecordHandler) {
    this.record = record;
  }

  push(text: string): void {
    // The newline cannot be in what was left over: search only the new text (a line longer than many
    // pieces would otherwise be rescanned from its start on every piece).
    let from = this.rest.length;
    let s = this.rest.length > 0 ? this.rest + text : text;
    let start = 0;
    for (;;) {
      const nl = s.indexOf('\n', Math.max(start, from));
      from = 0;
      if (nl === -1) break;
      this.emit(s, start, nl);
      start = nl + 1;
    }
    this.rest = start === 0 ? s : s.slice(start);
    s = '';
  }

  end(): void {
    if (this.rest.length > 0) this.emit(this.rest, 0, this.rest.length);
    this.rest = '';
  }

  private emit(s: string, start: number, end: number): void {
    const text = s.slice(start, end);
    if (skipWs(text, 0, text.length) < text.length) this.record(text, this.line, this.offset);
    this.line++;
    this.offset += Buffer.byteLength(text) + 1;
  }
}

/** start: before '['; first: after '[' (an element or ']'); element: after ','; after: after an element. */
type ArrayState = 'start' | 'first' | 'element' | 'after' | 'done';

/**
 * A JSON array's elements: a bracket-depth scan that respects strings and escapes. An element cut off
 * by the end of a piece is kept and completed by the next piece (and rescanned only once the buffer has
 * doubled, so a huge element is not rescanned for every piece).
 */
export class JsonArrayCutter {
  private buf = '';
  private pos = 0;
  /** Byte offset of buf[0] in the input, and of buf[pos] once counted. */
  private bufOffset = 0;
  private line = 1;
  private state: ArrayState = 'start';
  private retryAt = 0;
  private readonly record: RecordHandler;
  index = 0;

  constructor(record: RecordHandler) {
    this.record = record;
  }

  push(text: string): void {
    this.buf = this.pos > 0 ? this.buf.slice(this.pos) + text : this.buf + text;
    this.pos = 0;
    if (this.buf.length >= this.retryAt) this.run(false);
  }

  end(): void {
    this.run(true);
    if (this.state === 'start') throw this.error('the input is empty: expected a JSON array', this.pos);
    if (this.state !== 'done') throw this.error('the input ends inside the array (truncated?)', this.buf.length);
  }

  /** Count lines and bytes of buf[pos, to) and move pos there. */
  private advance(to: number): void {
    if (to <= this.pos) return;
    const part = this.buf.slice(this.pos, to);
    this.bufOffset += Buffer.byteLength(part);
    let nl = part.indexOf('\n');
    while (nl !== -1) {
      this.line++;
      nl = part.indexOf('\n', nl + 1);
    }
    this.pos = to;
  }

  private error(message: string, at: number): JsonInputError {
    this.advance(Math.min(at, this.buf.length));
    return new JsonInputError(message, this.line, this.bufOffset);
  }

  private run(atEof: boolean): void {
    const s = this.buf;
    const end = s.length;
    for (;;) {
      this.advance(skipWs(s, this.pos, end));
      const i = this.pos;
      if (i >= end) return;
      const c = s.charCodeAt(i);
      if (this.state === 'start') {
        if (c !== 91) throw this.error(`expected a JSON array ('['), found ${JSON.stringify(s[i])}`, i);
        this.advance(i + 1);
        this.state = 'first';
        continue;
      }
      if (this.state === 'first' && c === 93) {
        // `[]`, whitespace inside or not
        this.advance(i + 1);
        this.state = 'done';
        continue;
      }
      if (this.state === 'element' || this.state === 'first') {
        let v;
        try {
          // Not validated here: each element is scanned again, fully, by whoever takes the record.
          v = scanValue(s, i, end, atEof, false);
        } catch (err) {
          if (err instanceof JsonSyntaxError) throw this.error(`element ${this.index + 1}: ${err.message}`, err.pos);
          throw err;
        }
        if (v.end === INCOMPLETE) {
          if (atEof) throw this.error(`the input ends inside element ${this.index + 1} (truncated?)`, i);
          // Buffer again until the cut-off element's text has doubled, then rescan it.
          this.retryAt = 2 * (end - i);
          return;
        }
        this.retryAt = 0;
        this.record(s.slice(i, v.end), this.line, this.bufOffset);
        this.index++;
        this.advance(v.end);
        this.state = 'after';
        continue;
      }
      if (this.state === 'after') {
        if (c === 44) {
          this.advance(i + 1);
          this.state = 'element';
          continue;
        }
        if (c === 93) {
          this.advance(i + 1);
          this.state = 'done';
          continue;
        }
        throw this.error(`expected ',' or ']' after element ${this.index}, found ${JSON.stringify(s[i])}`, i);
      }
      throw this.error(`unexpected ${JSON.stringify(s[i])} after the end of the array`, i);
    }
  }
}
