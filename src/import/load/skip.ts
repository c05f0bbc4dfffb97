/**
 * --on-error skip: load a failed batch without its bad rows. PostgreSQL names the line of most row
 * errors (a bad value, a wrong column count, NOT NULL, CHECK, a unique key): the records before it are
 * loaded, that record is rejected, and the rest is tried again. When no line is named (a foreign key
 * is checked at the end of the COPY), the range is cut in half until the bad record stands alone.
 * Pure: the COPY attempt and the error reading are passed in, so the search is unit-tested without a
 * server.
 */

import type { RecordSet } from '../cut/records.js';

export type { RecordSet } from '../cut/records.js';

/** What a failed attempt says about its rows. */
export interface RowFailure {
  /** The server's "line N" of the attempt's COPY, when it named one. */
  serverLine: number | undefined;
}

/** Load records [a, b) in a savepoint (rolled back on failure); resolves to the rows loaded. */
export type Attempt = (a: number, b: number) => Promise<number>;

export interface Skipped {
  rows: number;
  /** The records the server refused, in input order, each with its error. */
  rejected: { index: number; err: unknown }[];
}

/**
 * Load every record of `set` that the server accepts and name the ones it does not. `rowFailure` tells
 * a row error (rejectable) from any other failure (rethrown).
 */
export async function loadSkipping(
  set: RecordSet,
  attempt: Attempt,
  rowFailure: (err: unknown) => RowFailure | undefined,
  /** How an attempt at the whole set already failed, if it did (it is not tried again). */
  wholeFailed?: unknown,
): Promise<Skipped> {
  let rows = 0;
  const rejected: { index: number; err: unknown }[] = [];
  const reject = (index: number, err: unknown) => rejected.push({ index, err });
  // Ranges still to load, in input order: the next one is at the end.
  const todo: [number, number][] = [[0, set.count]];
  let known = wholeFailed;
  for (let range = todo.pop(); range !== undefined; range = todo.pop()) {
    const [a, b] = range;
    if (a >= b) continue;
    try {
      if (known !== undefined) throw known;
      rows += await attempt(a, b);
      continue;
    } catch (err) {
      known = undefined;
      const failure = rowFailure(err);
      if (failure === undefined) throw err;
      const named = failure.serverLine === undefined ? undefined : set.recordAtLine(a, b, failure.serverLine);
      if (named !== undefined) {
        reject(named, err);
        todo.push([named + 1, b], [a, named]);
      } else if (b - a === 1) {
        reject(a, err);
      } else {
        const mid = a + Math.floor((b - a) / 2);
        todo.push([mid, b], [a, mid]);
      }
    }
  }
  return { rows, rejected: rejected.sort((x, y) => x.index - y.index) };
}
