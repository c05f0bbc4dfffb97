/**
 * Rows of JSON that the server built (row_to_json), received through a text-format COPY, with COPY's
 * escaping undone: `\\` is a backslash, `\t` a tab, `\b` `\f` `\v` those controls, and `\n` / `\r` a
 * space. A raw CR or LF can only be whitespace inside a `json` column's value (the server keeps it as
 * written; JSON strings never hold one raw), so a space means the same JSON and keeps each row on one
 * line. Measured against the alternative, a CSV-format COPY with QUOTE 0x01 and DELIMITER 0x02 (bytes
 * JSON never holds, so nothing to undo): the server's CSV quoting scan costs more than this un-escaping
 * does here, 4.83 s against 4.59 s for the 2M rows of bench/export.mjs (medians of 5, output discarded;
 * bench/export.mjs shows the server's side of it with psql every run).
 *
 * Written over the chunk itself for NDJSON (un-escaping only shrinks); a backslash is searched once per
 * chunk position, never once per row (an indexOf from every row start would rescan quote-free input).
 */
import type { RowShaper } from './copy-out-parser.js';

const BACKSLASH = 0x5c;
const LF = 0x0a;
const COMMA = 0x2c;

/** The byte an escape stands for, by the byte after the backslash (PostgreSQL's CopyReadAttributesText). */
const UNESCAPE = new Uint8Array(256).map((_, b) => b);
UNESCAPE[0x6e] = 0x20; // \n: whitespace inside a json value, made a space
UNESCAPE[0x72] = 0x20; // \r: likewise
UNESCAPE[0x74] = 0x09; // \t
UNESCAPE[0x62] = 0x08; // \b
UNESCAPE[0x66] = 0x0c; // \f
UNESCAPE[0x76] = 0x0b; // \v

class JsonRows implements RowShaper {
  readonly inPlace: boolean;
  /** JSON array elements: each row becomes `,\n{…}` (json-array.ts drops the first comma). */
  private readonly items: boolean;
  /** A piece ended with a backslash: the next piece starts with the escaped byte. */
  private pending = false;
  /** The next backslash at or after `nextFrom` in `nextIn` (-1: none to the chunk's end). */
  private nextIn: Buffer | undefined;
  private nextFrom = 0;
  private next = -1;

  constructor(items: boolean) {
    this.items = items;
    // An element's two-byte prefix could overtake the read position when a message header is split
    // across socket chunks; lines only ever shrink.
    this.inPlace = !items;
  }

  maxOutput(n: number): number {
    // Items add two bytes per row; a row takes at least 5 bytes of protocol (its message header).
    return this.items ? n + 2 * Math.ceil(n / 5) + 2 : n;
  }

  private backslashFrom(src: Buffer, i: number): number {
    if (this.nextIn !== src || i < this.nextFrom || (this.next !== -1 && this.next < i)) {
      this.nextIn = src;
      this.nextFrom = i;
      this.next = src.indexOf(BACKSLASH, i);
    }
    return this.next;
  }

  piece(src: Buffer, start: number, end: number, first: boolean, last: boolean, out: Buffer, pos: number): number {
    if (first && this.items) {
      out[pos++] = COMMA;
      out[pos++] = LF;
    }
    // The row's last byte is its terminator, a raw LF (COPY escapes every LF in the data).
    const stop = last && this.items ? end - 1 : end;
    let i = start;
    if (this.pending && i < stop) {
      out[pos++] = UNESCAPE[src[i++] as number] as number;
      this.pending = false;
    }
    while (i < stop) {
      const b = this.backslashFrom(src, i);
      const plainEnd = b === -1 || b >= stop ? stop : b;
      if (plainEnd > i) {
        if (out === src) src.copyWithin(pos, i, plainEnd);
        else src.copy(out, pos, i, plainEnd);
        pos += plainEnd - i;
        i = plainEnd;
      }
      if (i === stop) break;
      // A backslash at i: the escaped byte follows, here or in the next piece.
      if (i + 1 < stop) {
        out[pos++] = UNESCAPE[src[i + 1] as number] as number;
        i += 2;
      } else {
        this.pending = true;
        i = stop;
      }
    }
    return pos;
  }
}

/** One JSON object per line (NDJSON). */
export function jsonLines(): RowShaper {
  return new JsonRows(false);
}

/** Elements for a JSON array: `,\n{…}` each, with no final newline. */
export function jsonItems(): RowShaper {
  return new JsonRows(true);
}
