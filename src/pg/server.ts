/**
 * What an import needs to know about the server before it chooses how to load and commit, asked in
 * one round trip (it is on the path to a small file's only batch): its version, how many prepared
 * transactions it allows, whether it is a Citus coordinator, free connections, what earlier imports
 * left behind, and who we are as a lease holder. The functions under the pg_stat_activity and
 * pg_prepared_xacts views, not the views: a new backend plans the views' joins from a cold catalog
 * cache, which made this query 17 ms instead of 10 on every import here.
 */
import type pg from 'pg';
import { holderFrom, HOLDER_SELECT, type Holder, type HolderRow } from './lease.js';

export interface ServerFacts {
  /** server_version_num, e.g. 180001. */
  version: number;
  maxPreparedTransactions: number;
  /** The citus extension is installed in this database. */
  citus: boolean;
  /** Connections a client may still open (max_connections less the reserved and the used ones). */
  freeConnections: number;
  /** Prepared transactions of dataio imports in this database (a crash during a two-phase commit). */
  preparedLeftovers: number;
  /** dataio's registry of staging tables exists, for us to read (there may be leftovers of a crashed import to drop). */
  stagingRegistry: boolean;
  holder: Holder;
}

export async function serverFacts(client: pg.Client): Promise<ServerFacts> {
  const r = await client.query<HolderRow & { version: number; mpt: number; citus: boolean; free: number; prepared: number; stagings: boolean }>(
    `SELECT current_setting('server_version_num')::int AS version,
            current_setting('max_prepared_transactions')::int AS mpt,
            EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') AS citus,
            current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int
              - (SELECT count(*) FROM pg_stat_get_activity(NULL) WHERE backend_type = 'client backend')::int AS free,
            (SELECT count(*) FROM pg_prepared_xact()
              WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND gid LIKE 'dataio\\_%')::int AS prepared,
            EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = 'dataio' AND c.relname = 'import_stagings'
                       AND has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT, DELETE')) AS stagings,
            ${HOLDER_SELECT}`,
  );
  const row = r.rows[0] as HolderRow & { version: number; mpt: number; citus: boolean; free: number; prepared: number; stagings: boolean };
  return {
    version: row.version,
    maxPreparedTransactions: row.mpt,
    citus: row.citus,
    freeConnections: row.free,
    preparedLeftovers: row.prepared,
    stagingRegistry: row.stagings,
    holder: holderFrom(client, row),
  };
}

/** The citus extension is installed in this database (for commands that need no other fact). */
export async function citusInstalled(client: pg.Client): Promise<boolean> {
  const r = await client.query<{ citus: boolean }>("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') AS citus");
  return r.rows[0]?.citus === true;
}
