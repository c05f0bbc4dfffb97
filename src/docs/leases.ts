/**
 * Who works on a document, kept in rows (leases, src/pg/lease.ts), never in a server session: behind
 * a transaction pooler a session advisory lock stays behind on a pooled server connection, and on
 * Citus every node must see it. A writer (doc-put, a resume, doc-rm) holds the lease in the
 * document's own row, alone; each reader (doc-get) holds a row in dataio.document_readers. A writer
 * waits for the readers to end, and a reader for the writer, so doc-rm cannot pull chunks from under
 * a doc-get and a resume cannot run beside the upload it resumes. Leases are renewed by a heartbeat
 * while their holder works and given back at the end; one whose holder was killed lapses after
 * DATAIO_LEASE_SECONDS (30 s), or at once when its holder's backend on the same server is seen gone
 * (a direct connection, not a pooled one), and is then taken over.
 *
 * Taking a lease is one short transaction that locks the document's row (FOR NO KEY UPDATE, which
 * chunk inserts' foreign-key checks do not wait for): a writer and a reader checking each other can
 * never both win.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { DataioError } from '../errors.js';
import { Heartbeat, holderOf, LEASE_COLUMNS, LEASE_SELECT, leaseAssign, leaseOver, leaseParams, leaseSeconds, leaseValues, liveBackends, type Holder, type LeaseRow } from '../pg/lease.js';
import { DOCUMENTS, READERS } from './schema.js';

/** How long to wait for another process to let go before saying so. */
export const LEASE_WAIT_MS = 10_000;
const RETRY_MS = 200;

export type LeaseKind = 'writer' | 'reader';

/** Why a lease could not be taken now: who holds the document, and until when at the latest. */
interface Busy {
  by: LeaseKind;
  until: Date;
  now: Date;
}

type Attempt = { taken: true } | { taken: false; gone: true } | { taken: false; gone: false; busy: Busy };

/** Leases that are still live, judged by expiry and (same server, direct connection) the holder's backend. */
async function live(client: pg.Client, holder: Holder, rows: LeaseRow[]): Promise<LeaseRow[]> {
  const others = rows.filter((r) => r.owner !== holder.owner);
  if (others.length === 0) return [];
  const near = others.some((r) => r.holder_server === holder.server && r.holder_pid !== null) ? await liveBackends(client) : undefined;
  return others.filter((r) => !leaseOver(r, r.now, near));
}

function busy(by: LeaseKind, rows: LeaseRow[]): Busy {
  const until = rows.reduce((max, r) => Math.max(max, r.lease_until?.getTime() ?? 0), 0);
  return { by, until: new Date(until), now: (rows[0] as LeaseRow).now };
}

async function inTransaction<T>(client: pg.Client, fn: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    const out = await fn();
    await client.query('COMMIT');
    return out;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/**
 * Lock the document's row for the rest of the transaction; a refusal when it is gone or another
 * process's writer's lease on it is live.
 */
async function lockRow(client: pg.Client, id: string, holder: Holder): Promise<Attempt | undefined> {
  const doc = await client.query<LeaseRow>(`SELECT ${LEASE_SELECT} FROM ${DOCUMENTS} WHERE id = $1 FOR NO KEY UPDATE`, [id]);
  const row = doc.rows[0];
  if (row === undefined) return { taken: false, gone: true };
  const writer = await live(client, holder, [row]);
  return writer.length > 0 ? { taken: false, gone: false, busy: busy('writer', writer) } : undefined;
}

async function tryWriter(client: pg.Client, id: string, holder: Holder): Promise<Attempt> {
  return inTransaction(client, async () => {
    const refusal = await lockRow(client, id, holder);
    if (refusal !== undefined) return refusal;
    const readers = await client.query<LeaseRow>(`SELECT ${LEASE_SELECT} FROM ${READERS} WHERE doc = $1`, [id]);
    const reading = await live(client, holder, readers.rows);
    if (reading.length > 0) return { taken: false, gone: false, busy: busy('reader', reading) };
    // Readers whose lease lapsed (killed) are cleared away with the taking.
    if (readers.rows.length > 0) await client.query(`DELETE FROM ${READERS} WHERE doc = $1`, [id]);
    await client.query(`UPDATE ${DOCUMENTS} SET ${leaseAssign(2)} WHERE id = $1`, [id, ...leaseParams(holder)]);
    return { taken: true };
  });
}

async function tryReader(client: pg.Client, id: string, holder: Holder): Promise<Attempt> {
  return inTransaction(client, async () => {
    const refusal = await lockRow(client, id, holder);
    if (refusal !== undefined) return refusal;
    await client.query(`INSERT INTO ${READERS} (doc, ${LEASE_COLUMNS}) VALUES ($1, ${leaseValues(2)})`, [id, ...leaseParams(holder)]);
    return { taken: true };
  });
}

function refused(id: string, doing: string, b: Busy): DataioError {
  const what = b.by === 'writer' ? 'writing or removing' : 'reading';
  const left = Math.max(0, Math.ceil((b.until.getTime() - b.now.getTime()) / 1000));
  return new DataioError('DOC_STATE', `cannot ${doing} document ${id}: another dataio process is ${what} it`, {
    hint: `wait for it to finish (or stop it), then run this again; if that process was killed, its lease lapses within ${left} s`,
  });
}

/** A lease this process holds on one document, renewed until released. */
export class DocumentLease {
  private readonly heartbeat: Heartbeat;
  private released = false;

  private constructor(
    private readonly client: pg.Client,
    readonly id: string,
    readonly kind: LeaseKind,
    readonly holder: Holder,
  ) {
    this.heartbeat = new Heartbeat(() => this.renew()).start();
  }

  /** Who we are as a holder, asked once per command on its coordinating connection. */
  static holder(client: pg.Client): Promise<Holder> {
    return holderOf(client);
  }

  /**
   * Take the `kind` lease on document `id`, waiting up to LEASE_WAIT_MS for another process to let
   * go; undefined when the document is not there (any more). `doing` completes "cannot … document".
   */
  static async take(client: pg.Client, holder: Holder, id: string, kind: LeaseKind, doing: string): Promise<DocumentLease | undefined> {
    const until = Date.now() + LEASE_WAIT_MS;
    for (;;) {
      const a = kind === 'writer' ? await tryWriter(client, id, holder) : await tryReader(client, id, holder);
      if (a.taken) return new DocumentLease(client, id, kind, holder);
      if (a.gone) return undefined;
      if (Date.now() + RETRY_MS > until) throw refused(id, doing, a.busy);
      await sleep(RETRY_MS);
    }
  }

  /** The writer's lease on a document this process has just inserted with leaseColumns(). */
  static ofNew(client: pg.Client, holder: Holder, id: string): DocumentLease {
    return new DocumentLease(client, id, 'writer', holder);
  }

  private async renew(): Promise<void> {
    const [table, key] = this.kind === 'writer' ? [DOCUMENTS, 'id'] : [READERS, 'doc'];
    await this.client.query(`UPDATE ${table} SET lease_until = now() + make_interval(secs => $3) WHERE ${key} = $1 AND owner = $2`, [this.id, this.holder.owner, leaseSeconds()]);
  }

  /** Stop renewing (before a last step that gives the lease back itself). */
  async stop(): Promise<void> {
    await this.heartbeat.stop();
  }

  /** Give the lease back (once; a lease already given back or taken over is left alone). */
  async release(): Promise<void> {
    await this.heartbeat.stop();
    if (this.released) return;
    this.released = true;
    if (this.kind === 'writer') {
      await this.client.query(`UPDATE ${DOCUMENTS} SET ${RELEASED} WHERE id = $1 AND owner = $2`, [this.id, this.holder.owner]);
    } else {
      await this.client.query(`DELETE FROM ${READERS} WHERE doc = $1 AND owner = $2`, [this.id, this.holder.owner]);
    }
  }
}

/** `SET` list that clears a writer's lease. */
export const RELEASED = 'owner = NULL, lease_until = NULL, holder_server = NULL, holder_pid = NULL, holder_start = NULL';
