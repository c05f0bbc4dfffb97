/**
 * Rows of JSON that the server built (row_to_json), received through a CSV-format COPY whose QUOTE is
 * 0x01 and DELIMITER 0x02 (see sql.ts). Neither byte can occur in JSON text (PostgreSQL's JSON output
 * and its json input both escape control characters), so a row is quoted only when it holds a raw CR
 * or LF: whitespace inside a `json` column's value, which is kept as written. Those rows lose their
 * quotes and have CR and LF turned into spaces (JSON whitespace either way), so every row stays one
 * line. A text-format COPY would instead need every backslash of the JSON un-escaped in Node.
 */
import type { RowShaper } from './copy-out-parser.js';

const QUOTE = 0x01;
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const COMMA = 0x2c;

class JsonRows implements RowShaper {
  private quoted = false;
  /** JSON array elements: each row becomes `,\n{…}` (json-array.ts drops the first comma). */
  private readonly items: boolean;

  readonly inPlace: boolean;

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

  piece(src: Buffer, start: number, end: number, first: boolean, last: boolean, out: Buffer, pos: number): number {
    if (first) {
      this.quoted = src[start] === QUOTE;
      if (this.items) {
        out[pos++] = COMMA;
        out[pos++] = LF;
      }
    }
    // The row's last byte is its terminator, LF (always, for COPY TO STDOUT).
    const stop = last && this.items ? end - 1 : end;
    if (!this.quoted) {
      if (out === src) src.copyWithin(pos, start, stop);
      else src.copy(out, pos, start, stop);
      return pos + stop - start;
    }
    for (let k = start; k < stop; k++) {
      const b = src[k] as number;
      if (b === QUOTE) continue;
      out[pos++] = (b === LF || b === CR) && !(last && k === end - 1) ? SPACE : b;
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
