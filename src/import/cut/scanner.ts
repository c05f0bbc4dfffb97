/**
 * Record-boundary scanning for CSV and PostgreSQL text format, following PostgreSQL's own rule
 * (CopyReadLineText in src/backend/commands/copyfromparse.c):
 *  - CSV with QUOTE = ESCAPE (the default): every quote byte toggles "in quotes"; a doubled quote
 *    toggles twice, which is the same. A newline outside quotes ends the record.
 *  - CSV with ESCAPE != QUOTE: inside quotes, the escape byte makes the next byte literal.
 *  - text format: no quotes; a backslash makes the next byte literal everywhere (so `\<LF>` is data).
 * The line-ending style is fixed by the first record (LF, CRLF or CR). We only ever cut just after the
 * record's final LF (or CR), bytes that never occur inside a multibyte UTF-8 character.
 *
 * The scanners are pure state machines over Buffers: no allocation, no copying (but for the
 * counting in byte-count.ts).
 */
import { countByte, MIN_SIMD } from './byte-count.js';

export type Eol = 'lf' | 'crlf' | 'cr';

export interface Dialect {
  /** The quote byte, or null for text format. */
  quote: number | null;
  /** The escape byte, or null. For CSV, equal to quote unless --escape says otherwise. */
  escape: number | null;
  /** Text format: the escape applies everywhere, not only inside quotes. */
  escapeAlways: boolean;
}

export const LF = 0x0a;
export const CR = 0x0d;

export function csvDialect(quote = '"', escape = quote): Dialect {
  return { quote: byteOf(quote, '--quote'), escape: byteOf(escape, '--escape'), escapeAlways: false };
}

export const TEXT_DIALECT: Dialect = { quote: null, escape: 0x5c, escapeAlways: true };

function byteOf(ch: string, what: string): number {
  const b = Buffer.from(ch, 'utf8');
  if (b.length !== 1) throw new RangeError(`${what} must be a single one-byte character, not ${JSON.stringify(ch)}`);
  return b[0] as number;
}

export interface Scanner {
  /**
   * Find the end of the first record that ends at or after `from` in chunk: the index just after its
   * terminating newline byte. The state advances up to there. Returns -1 when the chunk ends first
   * (the state then covers the whole chunk).
   */
  findEnd(chunk: Buffer, from: number): number;
  /** Advance the state over chunk[from, to) without looking for record ends. */
  skip(chunk: Buffer, from: number, to: number): void;
  /** True when the input so far ends inside a quoted field. */
  readonly inQuote: boolean;
}

/**
 * The hot path: CSV with QUOTE = ESCAPE. Uses Buffer.indexOf for both the newline and the quote, and
 * caches the next quote's position so quote-free input is not rescanned after every newline (which
 * would be quadratic in the chunk size).
 */
export class QuoteToggleScanner implements Scanner {
  inQuote = false;
  private readonly quote: number;
  private readonly nl: number;
  /** Cache: position of the next quote in `cachedChunk` at or after `cachedFrom`, or -1. */
  private cachedChunk: Buffer | undefined;
  private cachedQuote = -1;

  constructor(quote: number, eol: Eol) {
    this.quote = quote;
    this.nl = eol === 'cr' ? CR : LF;
  }

  private cachedFrom = 0;

  /** The next quote at or after `from`; valid as long as scanning moves forward through one chunk. */
  private nextQuote(chunk: Buffer, from: number): number {
    const stale = this.cachedChunk !== chunk || from < this.cachedFrom || (this.cachedQuote !== -1 && this.cachedQuote < from);
    if (stale) {
      this.cachedChunk = chunk;
      this.cachedFrom = from;
      this.cachedQuote = chunk.indexOf(this.quote, from);
    }
    return this.cachedQuote;
  }

  findEnd(chunk: Buffer, from: number): number {
    let pos = from;
    const len = chunk.length;
    while (pos < len) {
      const q = this.nextQuote(chunk, pos);
      if (this.inQuote) {
        // Inside quotes newlines are data: jump to the closing quote.
        if (q === -1) return -1;
        this.inQuote = false;
        pos = q + 1;
        continue;
      }
      const n = chunk.indexOf(this.nl, pos);
      if (n === -1) {
        // No newline left in this chunk: only the quote parity matters now.
        this.skip(chunk, pos, len);
        return -1;
      }
      if (q === -1 || n < q) return n + 1;
      this.inQuote = true;
      pos = q + 1;
    }
    return -1;
  }

  skip(chunk: Buffer, from: number, to: number): void {
    if (to - from >= MIN_SIMD) {
      // Only the parity of the quotes matters here: count them (a call per quote is far slower).
      // The next-quote cache stays right: it is checked against the position it is asked for.
      if ((countByte(chunk, this.quote, from, to) & 1) === 1) this.inQuote = !this.inQuote;
      return;
    }
    let pos = from;
    for (;;) {
      const q = this.nextQuote(chunk, pos);
      if (q === -1 || q >= to) return;
      this.inQuote = !this.inQuote;
      pos = q + 1;
    }
  }
}

/** The general case, a byte loop: CSV with a distinct escape byte, or text format. */
export class EscapeScanner implements Scanner {
  inQuote = false;
  /** The previous byte was an active escape: this byte is literal. */
  private escaped = false;
  private readonly quote: number;
  private readonly escape: number;
  private readonly escapeAlways: boolean;
  private readonly nl: number;

  constructor(dialect: Dialect, eol: Eol) {
    this.quote = dialect.quote ?? -1;
    this.escape = dialect.escape ?? -1;
    this.escapeAlways = dialect.escapeAlways;
    this.nl = eol === 'cr' ? CR : LF;
  }

  private step(b: number): boolean {
    if (this.escaped) {
      this.escaped = false;
      return false;
    }
    if (b === this.escape && (this.escapeAlways || this.inQuote)) {
      // With QUOTE = ESCAPE this is never reached for the quote (handled by QuoteToggleScanner).
      this.escaped = true;
      return false;
    }
    if (b === this.quote) {
      this.inQuote = !this.inQuote;
      return false;
    }
    return b === this.nl && !this.inQuote;
  }

  findEnd(chunk: Buffer, from: number): number {
    for (let i = from; i < chunk.length; i++) {
      if (this.step(chunk[i] as number)) return i + 1;
    }
    return -1;
  }

  skip(chunk: Buffer, from: number, to: number): void {
    for (let i = from; i < to; i++) this.step(chunk[i] as number);
  }
}

export function makeScanner(dialect: Dialect, eol: Eol): Scanner {
  if (dialect.quote !== null && (dialect.escape === null || dialect.escape === dialect.quote) && !dialect.escapeAlways) {
    return new QuoteToggleScanner(dialect.quote, eol);
  }
  return new EscapeScanner(dialect, eol);
}

export interface FirstRecord {
  /** Index just after the first record's terminator (its end when the input has a single record). */
  end: number;
  /** Null when the input holds no line terminator at all (one record, no newline). */
  eol: Eol | null;
}

/**
 * Find the first record of the input and with it the line-ending style, as PostgreSQL does: the
 * first unquoted CR or LF decides. Returns undefined when `buf` is not yet enough to decide (the caller
 * reads more); pass `atEof` when no more input will come.
 */
export function findFirstRecord(buf: Buffer, dialect: Dialect, atEof: boolean): FirstRecord | undefined {
  let inQuote = false;
  let escaped = false;
  const quote = dialect.quote ?? -1;
  const escape = dialect.escape ?? -1;
  const toggleOnly = escape === quote;
  for (let i = 0; i < buf.length; i++) {
    const b = buf[i] as number;
    if (escaped) {
      escaped = false;
      continue;
    }
    if (!toggleOnly && b === escape && (dialect.escapeAlways || inQuote)) {
      escaped = true;
      continue;
    }
    if (b === quote) {
      inQuote = !inQuote;
      continue;
    }
    if (inQuote) continue;
    if (b === LF) return { end: i + 1, eol: 'lf' };
    if (b === CR) {
      if (i + 1 >= buf.length) return atEof ? { end: i + 1, eol: 'cr' } : undefined;
      return buf[i + 1] === LF ? { end: i + 2, eol: 'crlf' } : { end: i + 1, eol: 'cr' };
    }
  }
  return atEof ? { end: buf.length, eol: null } : undefined;
}

/** Count line terminators in buf (for mapping server line numbers back to input lines). */
export function countLines(buf: Buffer, eol: Eol | null): number {
  return countByte(buf, eol === 'cr' ? CR : LF);
}

export const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);
