/**
 * Each staged row's batch, for an upsert's last-wins and --on-error skip's rejects (POSITION_COLUMNS in
 * move.ts): the staging table's default for the batch column, taken from `SET LOCAL dataio.batch`,
 * which each batch's transaction sets before its COPY.
 *
 * A default of `current_setting('dataio.batch')::bigint` is evaluated for every row: 0.55 s of a
 * 2M-row COPY's 3.6 s here (psql, alternating). dataio.batch_position() reads the same setting but is
 * declared IMMUTABLE, so COPY, which simplifies the column defaults once before its first row, folds
 * it into a constant: the setting's value at the COPY's start, which is the batch's. It serves as a
 * staging default only; nothing else may call it (an immutable function's result may be kept by the
 * planner beyond the statement, which a setting that changes per batch does not allow).
 *
 * The function lives in the dataio schema, made with the staging registry or the ledger. On Citus the
 * staging tables keep current_setting (a function in a distributed table's default must exist on every
 * node), and so does a one-connection import's temporary staging table (it makes no dataio schema).
 */
import { SCHEMA } from '../../pg/dataio-schema.js';

export const BATCH_POSITION = `${SCHEMA}.batch_position()`;

/** True when the function is there (a part of a present() check). */
export const BATCH_POSITION_PRESENT = `to_regprocedure('${BATCH_POSITION}') IS NOT NULL`;

export const BATCH_POSITION_DDL = `CREATE OR REPLACE FUNCTION ${BATCH_POSITION} RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT current_setting('dataio.batch')::bigint $$`;

/** The batch column's default: folded once per COPY where the function exists (`folded`), else per row. */
export function batchDefault(folded: boolean): string {
  return folded ? BATCH_POSITION : "current_setting('dataio.batch')::bigint";
}
