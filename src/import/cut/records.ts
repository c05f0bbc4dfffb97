/**
 * A batch's records one by one: what the batch cutters of each format provide for loading a failed
 * batch again without its bad rows (load/skip.ts) and for the rejects file.
 */

/** The records of one batch, as a retry needs them. */
export interface RecordSet {
  readonly count: number;
  /** The COPY input of records [a, b). */
  copyInput(a: number, b: number): Buffer[];
  /** The record in [a, b) that a COPY of records [a, b) calls "line N", if any. */
  recordAtLine(a: number, b: number, serverLine: number): number | undefined;
}

/** A batch's records, for loading it again without its bad ones and for the rejects file. */
export interface BatchRecords extends RecordSet {
  /** Where record i was in the input, and its bytes there. */
  rejectAt(i: number): { line: number; offset: number; raw: Buffer };
}
