/**
 * Cutting JSON input into records: NDJSON by lines, a JSON array by its top-level elements. Both work
 * on decoded text fed in arbitrary pieces and call `record` with the source text of each record and
 * where it was (input line for NDJSON; byte offset and element index for arrays). Pure: no I/O.
 */
import { isJsonNumber, isNumberByte, QUOTE as QUOTE_BYTE, skipWsBytes } from './bytes.js';
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

/**
 * The byte cutters below do what NdjsonCutter and JsonArrayCutter do, on the input's bytes as read (no
 * decoding): a record is handed over as a range of a Buffer, mostly a view of the piece read (only a
 * record cut by the end of a piece is copied, once, when its end arrives). Same records, lines and
 * messages as the string cutters; byte offsets are the input's own (a UTF-8 BOM counts, where the
 * string path counted from after it).
 */
export type ByteRecordHandler = (buf: Buffer, start: number, end: number, line: number, offset: number) => void;

const EMPTY = Buffer.alloc(0);

/** Drops a UTF-8 byte order mark at the start of the input: it is no part of the JSON. */
class BomSkipper {
  private head: Buffer | undefined = EMPTY;
  /** Bytes of the input dropped (0 or 3). */
  skipped = 0;

  /** The piece to use (possibly empty); holds back a piece shorter than a BOM that starts like one. */
  take(piece: Buffer): Buffer {
    if (this.head === undefined) return piece;
    const h = this.head.length > 0 ? Buffer.concat([this.head, piece]) : piece;
    if (h.length < 3 && (h.length === 0 || h[0] === 0xef) && (h.length < 2 || h[1] === 0xbb)) {
      this.head = h;
      return EMPTY;
    }
    this.head = undefined;
    if (h[0] === 0xef && h[1] === 0xbb && h[2] === 0xbf) {
      this.skipped = 3;
      return h.subarray(3);
    }
    return h;
  }

  /** What was held back at the end of the input (a short input that only looked like a BOM). */
  end(): Buffer {
    const h = this.head ?? EMPTY;
    this.head = undefined;
    return h;
  }
}

/** NDJSON on bytes: one value per line; blank lines are skipped. */
export class NdjsonByteCutter {
  /** The start of a line cut off by the end of a piece (views of the pieces). */
  private pieces: Buffer[] = [];
  private line = 1;
  private offset = 0;
  private readonly bom = new BomSkipper();
  private readonly record: ByteRecordHandler;

  constructor(record: ByteRecordHandler) {
    this.record = record;
  }

  push(piece: Buffer): void {
    const b = this.bom.take(piece);
    if (this.offset === 0) this.offset = this.bom.skipped;
    if (b.length === 0) return;
    let start = 0;
    let nl = b.indexOf(10);
    if (nl !== -1 && this.pieces.length > 0) {
      this.pieces.push(b.subarray(0, nl));
      const joined = Buffer.concat(this.pieces);
      this.pieces = [];
      this.emit(joined, 0, joined.length);
      start = nl + 1;
      nl = b.indexOf(10, start);
    }
    while (nl !== -1) {
      this.emit(b, start, nl);
      start = nl + 1;
      nl = b.indexOf(10, start);
    }
    if (start < b.length) this.pieces.push(start === 0 ? b : b.subarray(start));
  }

  end(): void {
    const held = this.bom.end();
    if (held.length > 0) this.push(held);
    if (this.pieces.length > 0) {
      const joined = Buffer.concat(this.pieces);
      this.pieces = [];
      this.emit(joined, 0, joined.length);
    }
  }

  private emit(b: Buffer, start: number, end: number): void {
    if (skipWsBytes(b, start, end) < end) this.record(b, start, end, this.line, this.offset);
    this.line++;
    this.offset += end - start + 1;
  }
}

/** Byte classes for the element scan: outside strings, " { } [ ] and newline matter; inside, " \ and newline. */
const OUTSIDE = new Uint8Array(256);
for (const c of [34, 123, 125, 91, 93, 10]) OUTSIDE[c] = 1;
const INSIDE = new Uint8Array(256);
for (const c of [34, 92, 10]) INSIDE[c] = 1;

/** What an element cut off by the end of a piece is: nothing pending, a string/object/array, a number, a literal. */
const NONE = 0;
const NESTED = 1;
const NUMBER = 2;
const LITERAL = 3;
const LITERAL_WORDS: Record<number, Uint8Array> = { 116: Buffer.from('true'), 102: Buffer.from('false'), 110: Buffer.from('null') };

function charLength(c: number): number {
  return c < 0xc0 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
}

/** The first character at b[i] as the string path's messages show it (JSON.stringify of one UTF-16 unit). */
function charAt(b: Buffer, i: number): string {
  const s = b.toString('utf8', i, Math.min(b.length, i + charLength(b[i] as number)));
  return JSON.stringify(s[0] ?? '');
}

/** An error about a character that the end of a piece cut in two: thrown once the rest has come. */
interface Deferred {
  bytes: Buffer;
  line: number;
  offset: number;
  message: (char: string) => string;
}

/**
 * A JSON array's elements on bytes: the same bracket-depth scan as JsonArrayCutter, resumable at the
 * end of every piece (no element is scanned twice, however many pieces it spans).
 */
export class JsonArrayByteCutter {
  index = 0;
  private state: ArrayState = 'start';
  private line = 1;
  /** Byte offset of the current piece's start. */
  private offset = 0;
  private readonly bom = new BomSkipper();
  private readonly record: ByteRecordHandler;
  /** The element being scanned when a piece ended: its bytes so far, where it began, and the scan state. */
  private pending: Buffer[] = [];
  private mode = NONE;
  private elementLine = 0;
  private elementOffset = 0;
  private closers: number[] = [];
  private inString = false;
  private escaped = false;
  private word: Uint8Array = EMPTY;
  private matched = 0;
  private deferred: Deferred | undefined;

  constructor(record: ByteRecordHandler) {
    this.record = record;
  }

  push(piece: Buffer): void {
    const b = this.bom.take(piece);
    if (this.offset === 0) this.offset = this.bom.skipped;
    if (b.length === 0) return;
    this.run(b, false);
    this.offset += b.length;
  }

  end(): void {
    const held = this.bom.end();
    if (held.length > 0) this.push(held);
    this.run(EMPTY, true);
    if (this.state === 'start') throw this.error('the input is empty: expected a JSON array', 0);
    if (this.state !== 'done') throw this.error('the input ends inside the array (truncated?)', 0);
  }

  private error(message: string, at: number): JsonInputError {
    return new JsonInputError(message, this.line, this.offset + at);
  }

  private elementError(message: string, at: number): JsonInputError {
    return this.error(`element ${this.index + 1}: ${message}`, at);
  }

  private truncated(): JsonInputError {
    return new JsonInputError(`the input ends inside element ${this.index + 1} (truncated?)`, this.elementLine, this.elementOffset);
  }

  /** Throw `message` about the character at b[i], or, when the piece ends inside it, once it is whole. */
  private fail(b: Buffer, i: number, atEof: boolean, message: (char: string) => string, line = this.line, offset = this.offset + i): void {
    if (atEof || i + charLength(b[i] as number) <= b.length) throw new JsonInputError(message(charAt(b, i)), line, offset);
    this.deferred = { bytes: b.subarray(i), line, offset, message };
  }

  private run(b: Buffer, atEof: boolean): void {
    const n = b.length;
    let i = 0;
    const d = this.deferred;
    if (d !== undefined) {
      const bytes = Buffer.concat([d.bytes, b]);
      if (atEof || bytes.length >= charLength(bytes[0] as number)) throw new JsonInputError(d.message(charAt(bytes, 0)), d.line, d.offset);
      d.bytes = bytes;
      return;
    }
    if (this.mode !== NONE) {
      i = this.scanElement(b, 0, atEof);
      if (i < 0) return;
    }
    for (;;) {
      while (i < n) {
        const c = b[i] as number;
        if (c === 10) this.line++;
        else if (c !== 32 && c !== 9 && c !== 13) break;
        i++;
      }
      if (i >= n) return;
      const c = b[i] as number;
      if (this.state === 'start') {
        if (c !== 91) return this.fail(b, i, atEof, (ch) => `expected a JSON array ('['), found ${ch}`);
        i++;
        this.state = 'first';
      } else if (this.state === 'first' && c === 93) {
        i++;
        this.state = 'done';
      } else if (this.state === 'element' || this.state === 'first') {
        this.elementLine = this.line;
        this.elementOffset = this.offset + i;
        if (c === 123 || c === 91 || c === QUOTE_BYTE) {
          this.mode = NESTED;
          this.closers = [];
          this.inString = false;
          this.escaped = false;
        } else if (c === 45 || (c >= 48 && c <= 57)) {
          this.mode = NUMBER;
        } else if (c === 116 || c === 102 || c === 110) {
          this.mode = LITERAL;
          this.word = LITERAL_WORDS[c] as Uint8Array;
          this.matched = 0;
        } else return this.fail(b, i, atEof, (ch) => `element ${this.index + 1}: unexpected ${ch}`);
        i = this.scanElement(b, i, atEof);
        if (i < 0) return;
      } else if (this.state === 'after') {
        if (c === 44) this.state = 'element';
        else if (c === 93) this.state = 'done';
        else return this.fail(b, i, atEof, (ch) => `expected ',' or ']' after element ${this.index}, found ${ch}`);
        i++;
      } else return this.fail(b, i, atEof, (ch) => `unexpected ${ch} after the end of the array`);
    }
  }

  /** Scan the pending element from b[from]; returns where it ends in b, or -1 when b ends first (kept pending). */
  private scanElement(b: Buffer, from: number, atEof: boolean): number {
    const n = b.length;
    let j = from;
    let end = -1;
    if (this.mode === NESTED) {
      const closers = this.closers;
      let inString = this.inString;
      let escaped = this.escaped;
      let line = this.line;
      scan: for (;;) {
        if (inString) {
          if (escaped) {
            if (j >= n) break;
            if (b[j] === 10) line++;
            escaped = false;
            j++;
          }
          while (j < n && INSIDE[b[j] as number] === 0) j++;
          if (j >= n) break;
          const c = b[j++] as number;
          if (c === QUOTE_BYTE) {
            inString = false;
            if (closers.length === 0) {
              end = j;
              break;
            }
          } else if (c === 92) escaped = true;
          else line++;
        } else {
          while (j < n && OUTSIDE[b[j] as number] === 0) j++;
          if (j >= n) break;
          const c = b[j] as number;
          if (c === QUOTE_BYTE) inString = true;
          else if (c === 123) closers.push(125);
          else if (c === 91) closers.push(93);
          else if (c === 10) line++;
          else {
            if (closers.pop() !== c) {
              this.line = line;
              throw this.elementError(`unexpected ${charAt(b, j)}`, j);
            }
            if (closers.length === 0) {
              end = j + 1;
              break scan;
            }
          }
          j++;
        }
      }
      this.inString = inString;
      this.escaped = escaped;
      this.line = line;
      if (end < 0) {
        if (atEof) throw this.truncated();
        return this.keep(b, from);
      }
      return this.complete(b, from, end);
    }
    if (this.mode === NUMBER) {
      while (j < n && isNumberByte(b[j] as number)) j++;
      if (j === n && !atEof) return this.keep(b, from);
      const token = this.pending.length > 0 ? Buffer.concat([...this.pending, b.subarray(from, j)]) : b.subarray(from, j);
      if (!isJsonNumber(token, 0, token.length)) {
        throw new JsonInputError(`element ${this.index + 1}: malformed number ${JSON.stringify(token.toString('latin1'))}`, this.elementLine, this.elementOffset);
      }
      return this.complete(b, from, j);
    }
    // LITERAL
    const word = this.word;
    while (this.matched < word.length && j < n) {
      if (b[j] !== word[this.matched]) throw new JsonInputError(`element ${this.index + 1}: unexpected ${JSON.stringify(String.fromCharCode(word[0] as number))}`, this.elementLine, this.elementOffset);
      this.matched++;
      j++;
    }
    if (this.matched < word.length) {
      if (atEof) throw new JsonInputError(`element ${this.index + 1}: unexpected ${JSON.stringify(String.fromCharCode(word[0] as number))}`, this.elementLine, this.elementOffset);
      return this.keep(b, from);
    }
    return this.complete(b, from, j);
  }

  private keep(b: Buffer, from: number): number {
    if (from < b.length) this.pending.push(from === 0 ? b : b.subarray(from));
    return -1;
  }

  private complete(b: Buffer, from: number, end: number): number {
    if (this.pending.length === 0) this.record(b, from, end, this.elementLine, this.elementOffset);
    else {
      this.pending.push(b.subarray(from, end));
      const joined = Buffer.concat(this.pending);
      this.pending = [];
      this.record(joined, 0, joined.length, this.elementLine, this.elementOffset);
    }
    this.mode = NONE;
    this.index++;
    this.state = 'after';
    return end;
  }
}
