/**
 * `dataio setup`: make dataio's own schema and tables once, as a role that may (the database owner),
 * and let another role use them. A least-privileged role that imports and exports (INSERT and SELECT
 * on its tables, nothing else) then also gets the parallel all-or-nothing import, --import-id and
 * documents: each needs tables in the dataio schema, which such a role could not create itself.
 */
import type pg from 'pg';
import { ensureSchema } from './docs/schema.js';
import { DataioError } from './errors.js';
import { ensureLedger } from './import/commit/ledger.js';
import { ensureStagingRegistry } from './import/commit/staging.js';
import { ensureDecisionTable } from './import/commit/two-phase.js';
import { withClient, type ConnectionTarget } from './pg/connect.js';
import { SCHEMA } from './pg/dataio-schema.js';
import { quoteIdent } from './pg/ident.js';
import { mapQueryError } from './pg/pg-errors.js';
import { citusInstalled } from './pg/server.js';

export interface SetupResult {
  database: string;
  granted?: string | undefined;
}

async function citusCoordinator(c: pg.Client): Promise<boolean> {
  if (!(await citusInstalled(c))) return false;
  const k = await c.query<{ ok: boolean }>('SELECT citus_is_coordinator() AS ok');
  if (k.rows[0]?.ok !== true) throw new DataioError('USAGE', 'this is a Citus worker node: run dataio setup against the coordinator');
  return true;
}

export async function setup(target: ConnectionTarget, o: { grant?: string | undefined }): Promise<SetupResult> {
  return withClient(target, async (c) => {
    try {
      const citus = await citusCoordinator(c);
      await ensureLedger(c, citus);
      await ensureDecisionTable(c);
      await ensureStagingRegistry(c, citus);
      await ensureSchema(c, citus);
      if (o.grant !== undefined) {
        const role = quoteIdent(o.grant);
        // On Citus the grants reach distributed and reference tables (the documents) in one
        // transaction, which Citus allows over one connection per node only.
        await c.query('BEGIN');
        try {
          if (citus) await c.query(`SET LOCAL citus.multi_shard_modify_mode TO 'sequential'`);
          await c.query(`GRANT USAGE, CREATE ON SCHEMA ${SCHEMA} TO ${role}`);
          await c.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${SCHEMA} TO ${role}`);
          await c.query('COMMIT');
        } catch (err) {
          await c.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
      }
      return { database: c.database ?? '?', granted: o.grant };
    } catch (err) {
      throw mapQueryError(err, { action: 'dataio setup' });
    }
  });
}
