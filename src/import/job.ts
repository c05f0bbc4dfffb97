/**
 * An import, as a plan of named steps: connect and learn what the server allows; (resumable) read the
 * ledger; read the start of the input; choose how to commit (commit/choose.ts); make the table or the
 * staging table; load every batch over the pool; make it visible. Whatever fails is undone by the
 * commit mode as far as its way undoes, and reported as one line.
 */
import { DataioError } from '../errors.js';
import type { ConnectionTarget } from '../pg/connect.js';
import { displayName } from '../pg/ident.js';
import { mapQueryError } from '../pg/pg-errors.js';
import { isTransientFailure } from '../pg/retry.js';
import type { LoadableBatch } from './load/batch-load.js';
import { ImportJob } from './session.js';
import type { ImportHooks, ImportResult, JobOptions } from './options.js';
import type { Format } from './plan/format.js';
import type { InputSet } from './read/inputs.js';
import { markRetryable } from './retry.js';

export async function runImport<B extends LoadableBatch>(target: ConnectionTarget, o: JobOptions, inputs: InputSet, hooks: ImportHooks, format: Format<B>): Promise<ImportResult> {
  const job = new ImportJob<B>(target, o, inputs, hooks);
  // Without a ledger to read first, the input's start is read while the connection opens.
  // Its failure is taken up where it is awaited (or not at all, when an earlier step failed).
  const early = o.resume === undefined ? format.shape(job.wantsNewTable) : undefined;
  early?.catch(() => undefined);
  try {
    await job.connect();
    const finished = await job.readLedger();
    if (finished !== undefined) return finished;
    const create = early !== undefined ? await early : await format.shape(job.wantsNewTable);
    const mode = await job.chooseMode(create);
    const prepared = await job.prepare(mode);
    const loader = await format.bind(job.client, prepared.table, prepared.created, job.serverVersion);
    await job.ready(mode, loader);
    do await job.load(mode, loader);
    while (await job.again(mode));
    await job.finish(mode);
    return await job.result(mode, prepared);
  } catch (err) {
    throw await undone(job, err);
  } finally {
    await job.close();
  }
}

/** Undo what the commit mode undoes, and turn the failure into the one line the user reads. */
async function undone<B extends LoadableBatch>(job: ImportJob<B>, err: unknown): Promise<DataioError> {
  const action = `import into ${displayName(job.o.tableName)}`;
  if (job.decided) {
    return new DataioError('DB_ERROR', `${action}: the commit was decided but could not be finished: ${(err as Error).message}`, {
      hint: 'the rows are committed or will be: the next dataio import on this database finishes the commit',
      cause: err,
    });
  }
  const failure = err instanceof DataioError ? err : mapQueryError(err, { action });
  const transient = job.coordinatorLost || isTransientFailure(err) || isTransientFailure(failure);
  await job.abort(failure);
  const out = job.explain(failure);
  // A whole import may be tried again when everything is undone (or, resumable, in the ledger) and
  // its final commit never began (its outcome could be unknown).
  if (transient && job.phase !== 'commit') markRetryable(out);
  return out;
}
