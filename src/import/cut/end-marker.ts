/**
 * `\.` followed by a line ending is PostgreSQL's end-of-data marker in `COPY … FROM STDIN`: the server
 * stops reading there and ignores whatever follows in that COPY, without an error: the rest of the
 * batch, or, where one COPY takes several batches (load/streamed-copy.ts), the rest of them. Which
 * `\.` counts depends on the format and the server (CopyReadLineText in copyfromparse.c):
 *  - text format (dataio's TSV), PostgreSQL 18 and later: a line that holds only `\.` (`\.` elsewhere
 *    is an error there, nothing lost);
 *  - text format before 18: any `\.` and line ending, at the end of a longer line too (`2\t\.`: the
 *    row `2` and an empty value is loaded, the lines after it are not), unless its backslash is
 *    itself escaped (`\\.`);
 *  - CSV before 18: a record that is only `\.` (a line `\.` inside a quoted value is data); 18 and
 *    later read it as data.
 * So such an input line is refused before it is sent. (A value `\.` is written `\\.` in the text
 * format, `"\."` in CSV.)
 */
import { countLines, CR, LF, type Eol } from './scanner.js';

const BACKSLASH = 0x5c;
const DOT = 0x2e;

/** Which `\.` ends the data (see above); undefined: none does. */
export type EndMarkerRule = 'line' | 'line-end' | 'record';

/** The rule of a server (server_version_num) for a format. */
export function endMarkerRule(format: 'csv' | 'text', serverVersion: number): EndMarkerRule | undefined {
  if (format === 'text') return serverVersion >= 180000 ? 'line' : 'line-end';
  return serverVersion >= 180000 ? undefined : 'record';
}

export interface EndMarker {
  /** Its 0-based line number within the chunks. */
  line: number;
  /** The line holds only `\.` (not so: a longer line ending with it, under 'line-end'). */
  alone: boolean;
}

/**
 * The first `\.` in `chunks` (which begin at a record start, and end their lines with `eol`) that ends
 * the data under `rule`, or undefined. 'record' asks `startsRecord` whether a CSV record begins at a
 * byte offset of the chunks (only where a line `\.` is there at all: rare).
 */
export function endOfData(chunks: readonly Buffer[], eol: Eol | null, rule: EndMarkerRule, startsRecord?: (offset: number) => boolean): EndMarker | undefined {
  const byteAt = (c: number, i: number): number | undefined => {
    // The byte i positions from the start of chunk c (i may run into the neighbouring chunks).
    while (c < chunks.length && i >= (chunks[c] as Buffer).length) {
      i -= (chunks[c] as Buffer).length;
      c++;
    }
    while (c >= 0 && i < 0) {
      c--;
      if (c >= 0) i += (chunks[c] as Buffer).length;
    }
    return c < 0 || c >= chunks.length ? undefined : (chunks[c] as Buffer)[i];
  };
  const isEol = (b: number | undefined) => b === LF || b === CR;
  let before = 0; // bytes in the chunks before chunk c
  for (let c = 0; c < chunks.length; before += (chunks[c] as Buffer).length, c++) {
    const chunk = chunks[c] as Buffer;
    for (let at = chunk.indexOf(BACKSLASH); at !== -1; at = chunk.indexOf(BACKSLASH, at + 1)) {
      if (byteAt(c, at + 1) !== DOT) continue;
      const after = byteAt(c, at + 2);
      if (after !== undefined && !isEol(after)) continue;
      const prev = byteAt(c, at - 1);
      const alone = prev === undefined || isEol(prev);
      if (rule === 'line-end') {
        // Not when this backslash is escaped: an odd run of backslashes before it.
        let run = 0;
        while (byteAt(c, at - 1 - run) === BACKSLASH) run++;
        if (run % 2 === 1) continue;
      } else if (!alone) continue;
      if (rule === 'record' && startsRecord?.(before + at) !== true) continue;
      let lines = countLines(chunk.subarray(0, at), eol);
      for (let k = 0; k < c; k++) lines += countLines(chunks[k] as Buffer, eol);
      return { line: lines, alone };
    }
  }
  return undefined;
}
