/**
 * What an import is asked to do, and what it reports: the options every input format shares, the
 * job's view of them, and the result. Types only (and the one function that derives the job's view),
 * so the CLI can name them without loading the import code.
 */
import type { AheadConnection } from '../pg/connect.js';
import { displayName, parseTableName, type TableName } from '../pg/ident.js';
import type { Progress } from '../progress/progress.js';

/** What a key that is in the table already does: fail, keep the table's row, or take the input's. */
export type OnConflict = 'error' | 'nothing' | 'update';

/** Where COPY connections go on a Citus cluster: the nodes it lists, none but the one named, or these URLs. */
export type NodesOption = { kind: 'auto' } | { kind: 'none' } | { kind: 'urls'; urls: string[] };

/** The options every input format takes. */
export interface CommonImportOptions {
  /** Files, directories (their files, by name), or - for stdin. */
  inputs: string[];
  table: string;
  create: boolean;
  truncate: boolean;
  /** A number, or 'auto': 32, or as many as the CPU cores when the server is on this machine. */
  workers: number | 'auto';
  /** Bytes per batch, or 'auto' (see autoBatchSize). */
  batchSize: number | 'auto';
  sampleRows: number;
  /** abort: the first bad row fails the import; skip: bad rows are rejected and the rest loaded. */
  onError: 'abort' | 'skip';
  /** skip: more rejected rows than this fail the import as abort would. */
  maxErrors?: number | undefined;
  /** skip: the rejects file (default: next to the first input, see defaultRejectsPath). */
  rejectsPath?: string | undefined;
  /** Resumable mode under this id. */
  importId?: string | undefined;
  onConflict: OnConflict;
  /** The key an upsert matches rows by (default: the table's primary key). */
  key?: string[] | undefined;
  nodes: NodesOption;
}

export interface ImportHooks {
  progress(total: number | undefined): Progress;
  warn(message: string): void;
  /** Something worth knowing that is not a warning (which way the import commits, say). */
  note?(message: string): void;
  /** Aborted on SIGINT/SIGTERM: stop feeding, roll everything back. */
  signal?: AbortSignal;
  /** The import's first connection, opened ahead by the command (taken once: a retried import connects anew). */
  connection?: AheadConnection;
}

/** The job's view of the options. */
export interface JobOptions {
  tableName: TableName;
  create: boolean;
  workers: number | 'auto';
  batchSize: number | 'auto';
  truncate: boolean;
  onError: 'abort' | 'skip';
  maxErrors?: number | undefined;
  /** skip: the rejects file (its log is FILE.log). */
  rejectsPath?: string | undefined;
  /** Resumable mode: batches commit one by one with a ledger row under this id. */
  resume?: { id: string; options: Record<string, unknown> } | undefined;
  onConflict: OnConflict;
  key?: string[] | undefined;
  nodes: NodesOption;
}

export interface ImportResult {
  table: string;
  rows: number;
  /** Decompressed input bytes loaded (by this process). */
  bytes: number;
  batches: number;
  workers: number;
  /** Servers the COPY connections went to (a Citus cluster's nodes). */
  nodes: number;
  seconds: number;
  created: boolean;
  /** How the import was made visible: see commit/mode.ts. */
  commit: string;
  /** Input files read. */
  files: number;
  /** Rows rejected (--on-error skip), in this run and, resuming, in earlier ones. */
  rejected: number;
  /** Where the rejected records and their log are, when any were rejected. */
  rejectsFile?: string;
  rejectsLog?: string;
  /**
   * An upsert this process moved into the table (not after --on-error skip, nor into a Citus table:
   * see commit/upsert-counts.ts): what it did, the rows it added (keys the table lacked) and the rows
   * it overwrote.
   */
  upsert?: { onConflict: 'nothing' | 'update'; inserted: number; updated: number };
  /** Resumable imports: the id, and the rows that earlier runs (or other processes) had loaded. */
  importId?: string;
  earlierRows?: number;
  /** Resumable: the import had finished before this run; nothing was loaded. */
  alreadyComplete?: boolean;
}

/** The job's options from the command's; `loads` are the options that decide what is loaded (a resumed import must get the same). */
export function jobOptionsOf(o: CommonImportOptions, defaultRejects: string, loads: Record<string, unknown>): JobOptions {
  const tableName = parseTableName(o.table);
  return {
    tableName,
    create: o.create,
    workers: o.workers,
    batchSize: o.batchSize,
    truncate: o.truncate,
    onError: o.onError,
    maxErrors: o.maxErrors,
    rejectsPath: o.onError === 'skip' ? (o.rejectsPath ?? defaultRejects) : undefined,
    resume:
      o.importId === undefined
        ? undefined
        : { id: o.importId, options: { table: displayName(tableName), onConflict: o.onConflict, key: o.key ?? null, ...loads } },
    onConflict: o.onConflict,
    key: o.key,
    nodes: o.nodes,
  };
}
