/**
 * Per-document advisory locks, held by a command's coordinating session for as long as it works on
 * the document: writers (doc-put, a resume, doc-rm) take it exclusive, readers (doc-get) shared. So a
 * resume cannot run beside the upload it resumes, and doc-rm cannot pull chunks from under a doc-get.
 * Session locks vanish with the session, so a `kill -9`ed process never leaves one behind.
 */
import type pg from 'pg';
import { DataioError } from '../errors.js';
import { isPgError } from '../pg/pg-errors.js';
import { LOCK_SPACE } from '../pg/dataio-schema.js';

/**
 * How long to wait for another process to let go. Not zero: after a `kill -9` the dead client's
 * backend may need a moment to notice its socket closed and release the lock.
 */
export const LOCK_WAIT = '10s';

export async function lockDocument(client: pg.Client, id: string, mode: 'exclusive' | 'shared', doing: string): Promise<void> {
  const fn = mode === 'exclusive' ? 'pg_advisory_lock' : 'pg_advisory_lock_shared';
  try {
    await client.query(`SET lock_timeout = '${LOCK_WAIT}'`);
    await client.query(`SELECT ${fn}($1, hashtext($2))`, [LOCK_SPACE, id]);
    await client.query('RESET lock_timeout');
  } catch (err) {
    if (isPgError(err) && err.code === '55P03') {
      throw new DataioError('DOC_STATE', `cannot ${doing} document ${id}: another dataio process is ${mode === 'exclusive' ? 'using' : 'writing or removing'} it`, {
        hint: 'wait for it to finish (or stop it), then run this again',
        detail: `SQLSTATE ${err.code}`,
        cause: err,
      });
    }
    throw err;
  }
}
