/**
 * Support for the crash and resume tests: a big CSV, its reference load (one server-side COPY), a
 * checksum over a table's rows, and a dataio import run as a child process that the test can kill.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, chmodSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { binPath, query, repoRoot, type TestServer } from './env.js';

export const BIG_DDL = 'id bigint, name text, amount numeric, at timestamptz, note text';

/** `rows` rows of BIG_DDL with a header, written in pieces (a 2M-row file is about 120 MB). */
export function writeBigCsv(path: string, rows: number): void {
  writeFileSync(path, 'id,name,amount,at,note\n');
  for (let from = 1; from <= rows; from += 100_000) {
    const lines: string[] = [];
    for (let i = from; i < Math.min(from + 100_000, rows + 1); i++) {
      lines.push(`${i},name ${i},${(i * 7919) % 100_000}.${i % 100},2024-0${1 + (i % 9)}-1${i % 10} 0${i % 10}:00:00+00,${i % 13 === 0 ? `"quoted, ""${i}"""` : `note ${i}`}`);
    }
    appendFileSync(path, lines.join('\n') + '\n');
  }
  chmodSync(path, 0o644);
}

export interface Checksum {
  rows: number;
  distinct: number;
  hash: string;
}

/** Order-free: the row count, the distinct ids, and a sum of the rows' hashes (a doubled or lost row shows). */
export async function checksum(server: TestServer, table: string): Promise<Checksum> {
  const r = await query<{ n: string; d: string; h: string | null }>(server, `SELECT count(*) AS n, count(DISTINCT id) AS d, sum(hashtext(t::text)::numeric) AS h FROM ${table} t`);
  const row = r[0];
  return { rows: Number(row?.n), distinct: Number(row?.d), hash: String(row?.h) };
}

/** The source's checksum, through PostgreSQL's own COPY of the whole file into a table of its own. */
export async function referenceChecksum(server: TestServer, table: string, path: string): Promise<Checksum> {
  await query(server, `CREATE TABLE ${table} (${BIG_DDL})`);
  await query(server, `COPY ${table} FROM '${path}' (FORMAT csv, HEADER)`);
  return checksum(server, table);
}

export interface Running {
  child: ChildProcess;
  /** Resolves with the exit code (null when killed by a signal) and the output. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string }>;
}

/** Start `dataio args…` as a child process, with a clean environment. */
export function startCli(args: string[], env: Record<string, string> = {}, o: { stdin?: boolean } = {}): Running {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('PG') && k !== 'DATABASE_URL' && k !== 'DATAIO_HOME') clean[k] = v;
  const child = spawn(process.execPath, [binPath, ...args], { env: { ...clean, ...env }, cwd: repoRoot, stdio: [o.stdin === true ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stderr, stdout }));
  });
  return { child, done };
}

/** Poll `probe` every 20 ms until it says yes; fails after `ms`. */
export async function waitFor(what: string, probe: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await probe()) return;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Batches of import `id` in the ledger (0 before the ledger exists). */
export async function ledgerBatches(server: TestServer, id: string): Promise<number> {
  const exists = await query<{ ok: boolean }>(server, `SELECT to_regclass('dataio.import_batches') IS NOT NULL AS ok`);
  if (exists[0]?.ok !== true) return 0;
  const r = await query<{ n: string }>(server, "SELECT count(*) AS n FROM dataio.import_batches WHERE import_id = $1 AND state = 'done'", [id]);
  return Number(r[0]?.n ?? 0);
}
