/**
 * PostgreSQL's text format (dataio's TSV) reads a line that holds only `\.` as the end of the data and
 * ignores whatever follows it in that COPY, without an error: the rest of the batch, or, where one COPY
 * takes several batches (load/streamed-copy.ts), the rest of them. So an input line `\.` with anything
 * after it is refused before it is sent. (A value `\.` is written `\\.` in that format.)
 */
import { countLines, CR, LF, type Eol } from './scanner.js';

const BACKSLASH = 0x5c;
const DOT = 0x2e;

/**
 * Where the first line that holds only `\.` is in `chunks` (which begin at a line start, and end their
 * lines with `eol`): its 0-based line number within them, or -1 when there is none.
 */
export function endOfDataLine(chunks: readonly Buffer[], eol: Eol | null): number {
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
  for (let c = 0; c < chunks.length; c++) {
    const chunk = chunks[c] as Buffer;
    for (let at = chunk.indexOf(BACKSLASH); at !== -1; at = chunk.indexOf(BACKSLASH, at + 1)) {
      const before = byteAt(c, at - 1);
      if (before !== undefined && before !== LF && before !== CR) continue;
      if (byteAt(c, at + 1) !== DOT) continue;
      const after = byteAt(c, at + 2);
      if (after !== undefined && after !== LF && after !== CR) continue;
      let lines = countLines(chunk.subarray(0, at), eol);
      for (let k = 0; k < c; k++) lines += countLines(chunks[k] as Buffer, eol);
      return lines;
    }
  }
  return -1;
}
