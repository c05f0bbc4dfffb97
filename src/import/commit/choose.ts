/**
 * Choosing, once, how an import commits (mode.ts), from what the command asks and what the server
 * allows:
 *  - --import-id: resumable.
 *  - one worker (a small input, --workers 1, --truncate on a plain server): one connection.
 *  - --create, an upsert, a Citus table, a server without enough prepared transactions, a pooler in
 *    front: staging (publishing the staging table itself for --create).
 *  - otherwise, several workers into a plain table: two-phase commit.
 * Where dataio may not create what a way needs (its schema, a table in it), the next way is tried,
 * down to one connection, which needs nothing: it is always all or nothing.
 */
import type pg from 'pg';
import { DataioError } from '../../errors.js';
import type { TableInfo } from '../../pg/catalog.js';
import type { ConnectionTarget } from '../../pg/connect.js';
import type { TableName } from '../../pg/ident.js';
import type { ServerFacts } from '../../pg/server.js';
import type { BatchLoadContext, LoadableBatch } from '../load/batch-load.js';
import type { JobOptions } from '../options.js';
import type { ColumnDef } from '../plan/table.js';
import type { ImportRecord } from './ledger.js';
import type { CommitMode } from './mode.js';
import { Resumable } from './resumable.js';
import { SingleConnection } from './single.js';
import { ensureStagingRegistry, Staging } from './staging.js';
import { ensureDecisionTable, TwoPhaseCommit } from './two-phase.js';

export interface ChoiceEnv<B extends LoadableBatch> {
  coordinator: pg.Client;
  target: ConnectionTarget;
  facts: ServerFacts;
  /** Connected to a Citus coordinator (DDL and staging possible), not a worker node. */
  coordinatorNode: boolean;
  job: JobOptions;
  tableName: TableName;
  /** The table when it exists (undefined: --create makes it). */
  table: TableInfo | undefined;
  create: ColumnDef[] | undefined;
  workers: number;
  ctx: BatchLoadContext<B>;
  /** Resumable: the ledger's record of this id before this run. */
  record: ImportRecord | undefined;
  resumable: Omit<ConstructorParameters<typeof Resumable<B>>[0], 'coordinator' | 'holder' | 'tableName' | 'record' | 'create' | 'truncate' | 'onConflict' | 'key' | 'citus' | 'ctx'> | undefined;
  warn(message: string): void;
  note(message: string): void;
  onDecided(): void;
}

/** Why dataio's own tables cannot be had, in a few words (the full story is the error's). */
function reason(err: unknown): string {
  if (err instanceof DataioError && err.code === 'DB_PERMISSION') {
    const setup = /dataio setup --grant \S+/.exec(err.hint ?? '')?.[0];
    return `this role may not use the dataio schema${setup !== undefined ? ` (${setup} enables parallel loading)` : ''}`;
  }
  return (err as Error).message;
}

/** Why two-phase commit is not the way here, or undefined when it is. */
async function noTwoPhase<B extends LoadableBatch>(e: ChoiceEnv<B>): Promise<string | undefined> {
  if (e.table?.citus !== undefined) return `${e.table.display} is a Citus ${e.table.citus.kind} table (Citus refuses PREPARE TRANSACTION across nodes)`;
  if (e.facts.holder.pooled) return 'the connection goes through a pooler';
  if (e.facts.maxPreparedTransactions < e.workers) return `max_prepared_transactions is ${e.facts.maxPreparedTransactions}, below the ${e.workers} connections`;
  try {
    // The first round trip saw whether the table is there: asked again only when it may not be.
    if (e.facts.decisionTable !== true) await ensureDecisionTable(e.coordinator);
  } catch (err) {
    return reason(err);
  }
  return undefined;
}

async function stagingAllowed<B extends LoadableBatch>(e: ChoiceEnv<B>): Promise<string | undefined> {
  if (e.facts.citus && !e.coordinatorNode) return 'this is a Citus worker node (tables are made on the coordinator)';
  try {
    await ensureStagingRegistry(e.coordinator, e.facts.citus);
  } catch (err) {
    return reason(err);
  }
  return undefined;
}

export async function chooseMode<B extends LoadableBatch>(e: ChoiceEnv<B>): Promise<CommitMode<B>> {
  const j = e.job;
  const citus = e.facts.citus;
  const common = { tableName: e.tableName, create: e.create, truncate: j.truncate, citus, ctx: e.ctx };
  if (j.resume !== undefined && e.resumable !== undefined) {
    return new Resumable<B>({ ...e.resumable, ...common, coordinator: e.coordinator, holder: e.facts.holder, record: e.record, onConflict: j.onConflict, key: j.key });
  }
  const upsert = j.onConflict !== 'error' ? { onConflict: j.onConflict, key: j.key } : undefined;
  const single = (why?: string): CommitMode<B> => {
    if (why !== undefined) e.note(`loading over one connection: ${why}`);
    return new SingleConnection<B>(e.coordinator, { ...common, table: e.table, upsert });
  };
  if (e.workers <= 1) return single();
  // TRUNCATE admits no other writer until the commit; into a plain table one connection is the way
  // (COPY FREEZE). A Citus table takes it in the final transaction of a staged load instead.
  if (j.truncate && e.table?.citus === undefined) return single();
  const staged = (): Promise<CommitMode<B> | string> =>
    stagingAllowed(e).then((why) =>
      why !== undefined
        ? why
        : new Staging<B>({ ...common, coordinator: e.coordinator, target: e.target, holder: e.facts.holder, table: e.table, onConflict: j.onConflict, key: j.key, positions: upsert !== undefined || j.onError === 'skip', warn: e.warn }),
    );
  if (e.table === undefined || upsert !== undefined) {
    const s = await staged();
    return typeof s === 'string' ? single(s) : s;
  }
  const why = await noTwoPhase(e);
  if (why === undefined) return new TwoPhaseCommit<B>(e.coordinator, { table: e.table, holder: e.facts.holder, ctx: e.ctx, onDecided: e.onDecided });
  const s = await staged();
  // Both ways need the dataio schema: say it once.
  return typeof s === 'string' ? single(s === why ? s : `${why}, and ${s}`) : s;
}
