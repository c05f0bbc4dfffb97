/**
 * A server's statement_timeout and batches that would share one COPY (src/import/load/streamed-copy.ts):
 * the timeout applies to a COPY as one statement, and the server may still be loading what the kernel
 * took long before, so under a timeout each batch is a COPY of its own. An import longer than the
 * timeout loads, whether its COPYs are slow or its input is. Against real servers, the timeout set
 * for the import's connections as a user would (`options=-c statement_timeout=…` in the URL), the COPY
 * made slow by a row trigger, the input made slow by a pipe. (With a shared COPY both fail.)
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { importInputs } from '../../src/import/import.js';
import type { ConnectionTarget } from '../../src/pg/connect.js';
import { scratch } from '../support/files.js';
import { clientForSuite, testServers, uniqueName } from '../support/env.js';
import { importOptions, quietHooks } from '../support/import-options.js';

const { dir, file } = scratch('timeout');
const TIMEOUT_MS = 1000;

function csv(from: number, n: number, header: boolean): string {
  const rows = header ? ['id,note'] : [];
  for (let i = from; i < from + n; i++) rows.push(`${i},note ${i}`);
  return rows.join('\n') + '\n';
}

for (const server of testServers()) {
  describe(`a statement_timeout and a shared COPY on ${server.name}`, () => {
    const url = new URL(server.url);
    url.searchParams.set('options', `-c statement_timeout=${TIMEOUT_MS}`);
    const target: ConnectionTarget = { clientConfig: { connectionString: url.toString() }, display: server.name, local: true };
    let client!: pg.Client;
    clientForSuite(server.url, (c) => (client = c));

    /** A table whose every row costs the COPY `ms` milliseconds, and whose COPY statements are counted. */
    async function slowTable(ms: number): Promise<string> {
      const t = uniqueName('to');
      await client.query(`CREATE TABLE ${t} (id int, note text);
        CREATE TABLE ${t}_stmts (at timestamptz DEFAULT now());
        CREATE FUNCTION ${t}_slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(${ms / 1000}); RETURN NEW; END $$;
        CREATE TRIGGER ${t}_slow BEFORE INSERT ON ${t} FOR EACH ROW EXECUTE FUNCTION ${t}_slow();
        CREATE FUNCTION ${t}_count() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO ${t}_stmts DEFAULT VALUES; RETURN NULL; END $$;
        CREATE TRIGGER ${t}_count AFTER INSERT ON ${t} FOR EACH STATEMENT EXECUTE FUNCTION ${t}_count();`);
      return t;
    }
    const count = async (sql: string) => Number((await client.query(sql)).rows[0].n);

    it('loads an import whose COPYs take longer than the timeout altogether, a COPY per batch', async () => {
      // 1,500 rows at 1 ms each (pg_sleep takes 2 ms here): 1.5 s of COPY or more on each of two
      // connections; a batch (2 KB, some 135 rows) well within the timeout, even on a slow day.
      const input = file('slow.csv', csv(1, 1500, true));
      for (const workers of [1, 2]) {
        const t = await slowTable(1);
        const r = await importInputs(target, importOptions([input], t, workers, 2048), quietHooks);
        assert.equal(r.rows, 1500);
        assert.equal(await count(`SELECT count(DISTINCT id) AS n FROM ${t}`), 1500);
        // A COPY per batch of 2 KB or less.
        const copies = await count(`SELECT count(*) AS n FROM ${t}_stmts`);
        assert.ok(copies >= Math.floor(statSync(input).size / 2048), `a COPY per batch, not ${copies}`);
      }
    });

    it('loads an input that pauses for longer than the timeout', async () => {
      const t = await slowTable(0);
      const fifo = join(dir, `${t}.csv`);
      execFileSync('mkfifo', [fifo]);
      // The writer sends a part, waits longer than the timeout, then sends the rest.
      const writer = (async () => {
        const h = await open(fifo, 'w');
        try {
          await h.write(csv(1, 2000, true));
          await sleep(TIMEOUT_MS * 2);
          await h.write(csv(2001, 2000, false));
        } finally {
          await h.close();
        }
      })();
      const r = await importInputs(target, importOptions([fifo], t, 1, 4096), quietHooks);
      await writer;
      assert.equal(r.rows, 4000);
      assert.equal(await count(`SELECT count(DISTINCT id) AS n FROM ${t}`), 4000);
    });
  });
}
