/**
 * Test support: the real servers started by scripts/test.mjs, and running the built CLI.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { delimiter, dirname } from 'node:path';
import { after, before } from 'node:test';
import pg from 'pg';

export interface TestServer {
  name: string;
  url: string;
  /** DATAIO_HOME of the embedded server, for tests of the embedded default. */
  home?: string;
}

export function testServers(): TestServer[] {
  const raw = process.env['DATAIO_TEST_SERVERS'];
  if (!raw) return [];
  return JSON.parse(raw) as TestServer[];
}

export function embeddedServer(): TestServer | undefined {
  return testServers().find((s) => s.home !== undefined);
}

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const binPath = fileURLToPath(new URL('../../../bin/dataio', import.meta.url));

export function uniqueName(prefix = 't'): string {
  return `${prefix}_${randomBytes(4).toString('hex')}`;
}

/** The server's URL for another database (and, if given, another role). */
export function withUrlPath(url: string, database: string, user?: { name: string; password: string }): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  if (user) {
    u.username = user.name;
    u.password = user.password;
  }
  return u.toString();
}

export async function withClient<T>(server: TestServer, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: server.url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function query<R extends pg.QueryResultRow = pg.QueryResultRow>(server: TestServer, sql: string, params: unknown[] = []): Promise<R[]> {
  return withClient(server, async (c) => (await c.query<R>(sql, params)).rows);
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
}

export interface CliOptions {
  env?: Record<string, string | undefined>;
  stdin?: Buffer | string;
  cwd?: string;
  /** Run `node bin/dataio` instead of bin/dataio itself. */
  viaNode?: boolean;
}

/** Run the built `bin/dataio` as a user would, with a clean environment (no PG* or DATABASE_URL). */
export function runCli(args: string[], o: CliOptions = {}): Promise<CliResult> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('PG') && k !== 'DATABASE_URL' && k !== 'DATAIO_HOME') env[k] = v;
  }
  for (const [k, v] of Object.entries(o.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return new Promise((resolve, reject) => {
    // The file itself, as a shell or npx runs it (its first line is for /bin/sh, which starts the node
    // on PATH); `viaNode` runs it as `node bin/dataio` (this process's node), which skips that line.
    if (o.viaNode !== true) env['PATH'] = `${dirname(process.execPath)}${delimiter}${env['PATH'] ?? ''}`;
    const [cmd, argv] = o.viaNode === true ? [process.execPath, [binPath, ...args]] : [binPath, args];
    const child = spawn(cmd, argv, { env, cwd: o.cwd ?? repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.stdin.on('error', () => undefined);
    if (o.stdin !== undefined) child.stdin.end(o.stdin);
    else child.stdin.end();
    child.on('close', (code) => {
      const stdoutBytes = Buffer.concat(out);
      resolve({ code: code ?? -1, stdout: stdoutBytes.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutBytes });
    });
  });
}

/** Hand `use` a client of `url` for the tests of one describe(): connected before them, ended after. */
export function clientForSuite(url: string, use: (client: pg.Client) => void): void {
  let client: pg.Client | undefined;
  before(async () => {
    client = new pg.Client({ connectionString: url });
    await client.connect();
    use(client);
  });
  after(async () => {
    await client?.end();
  });
}
