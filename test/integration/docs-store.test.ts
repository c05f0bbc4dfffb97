import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { BinaryCopyParser, type CopyRow } from '../../src/docs/binary-copy.js';
import { getDocument, type GetResult } from '../../src/docs/get.js';
import { listDocuments, statDocument } from '../../src/docs/ls.js';
import { putDocument, type PutOptions, type PutResult } from '../../src/docs/put.js';
import { removeDocument } from '../../src/docs/rm.js';
import { ensureSchema } from '../../src/docs/schema.js';
import { DataioError, type ErrorCode } from '../../src/errors.js';
import type { ConnectionTarget } from '../../src/pg/connect.js';
import type { Progress } from '../../src/progress/progress.js';
import { scratch } from '../support/files.js';
import { query, testServers, uniqueName, withClient, withUrlPath, type TestServer } from '../support/env.js';

const MiB = 1024 * 1024;
const QUIET: Progress = { update: () => undefined, stop: () => undefined };
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function targetOf(url: string): ConnectionTarget {
  return { clientConfig: { connectionString: url }, display: 'the test server' };
}

function dataioError(code: ErrorCode, message: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof DataioError, `a DataioError, not ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  };
}

/** A stream that hands out `data` in pieces of uneven sizes, like a pipe. */
function unevenStream(data: Buffer): Readable {
  const pieces: Buffer[] = [];
  for (let i = 0, n = 1; i < data.length; i += n, n = (n * 7 + 13) % 300_000) pieces.push(data.subarray(i, i + n));
  return Readable.from(pieces, { objectMode: false });
}

for (const server of testServers()) {
  describe(`documents on ${server.name}`, () => {
    const target = targetOf(server.url);
    const { dir, file } = scratch('docs');

    const put = (o: Partial<PutOptions> & { input: string }): Promise<PutResult> =>
      putDocument(target, { workers: 3, ...o }, { progress: () => QUIET, started: () => undefined });
    const get = (ref: string, output: string): Promise<GetResult> =>
      getDocument(target, { ref, output, workers: 3 }, { progress: () => QUIET, resolved: () => undefined });

    it('round-trips a random stdin stream byte for byte, cut in uneven reads, over several connections', async () => {
      const data = randomBytes(21 * MiB + 12_345);
      const name = uniqueName('stdin');
      const r = await put({ input: '-', stdin: unevenStream(data), name, chunkSize: MiB });
      assert.equal(r.size, data.length);
      assert.equal(r.chunks, 22);
      assert.equal(r.sha256, sha(data));
      const out = join(dir, 'stdin.out');
      await get(r.id, out);
      assert.ok(readFileSync(out).equals(data));
      const rows = await query<{ n: number; storage: string }>(
        server,
        `SELECT (SELECT count(*)::int FROM dataio.chunks WHERE doc = $1) AS n,
                (SELECT attstorage FROM pg_attribute WHERE attrelid = 'dataio.chunks'::regclass AND attname = 'data') AS storage`,
        [r.id],
      );
      assert.deepEqual(rows[0], { n: 22, storage: 'e' });
    });

    it('stores and returns an empty document', async () => {
      const r = await put({ input: file('empty.bin', Buffer.alloc(0)) });
      assert.equal(r.chunks, 0);
      assert.equal(r.sha256, sha(Buffer.alloc(0)));
      const out = join(dir, 'empty.out');
      await get(r.id, out);
      assert.equal(readFileSync(out).length, 0);
    });

    it('keeps two documents with the same content apart', async () => {
      const data = randomBytes(300_000);
      const p = file('twice.bin', data);
      const a = await put({ input: p, chunkSize: 64 * 1024 });
      const b = await put({ input: p, chunkSize: 64 * 1024 });
      assert.notEqual(a.id, b.id);
      await removeDocument(target, { ref: a.id }, { progress: () => QUIET });
      const out = join(dir, 'twice.out');
      await get(b.id, out);
      assert.ok(readFileSync(out).equals(data));
    });

    it('finds a name with spaces and unicode; a shared name means the newest complete one; doc-rm refuses to guess', async () => {
      const name = `${uniqueName('Quarterly report')} – é€ 📄`;
      const first = await put({ input: file('v1.bin', Buffer.from('version 1')), name });
      const second = await put({ input: file('v2.bin', Buffer.from('version 2')), name });
      // A newer upload that is not complete does not hide the complete one.
      await query(server, `INSERT INTO dataio.documents (id, name, chunk_size, state) VALUES (gen_random_uuid(), $1, 1024, 'uploading')`, [name]);
      const out = join(dir, 'named.out');
      await get(name, out);
      assert.equal(readFileSync(out, 'utf8'), 'version 2');
      const stat = await withClient(server, (c) => statDocument(c, name));
      assert.equal(stat.listing.id, second.id);
      assert.equal(stat.sameName, 3);
      await assert.rejects(removeDocument(target, { ref: name }, { progress: () => QUIET }), (e: unknown) => {
        assert.ok(e instanceof DataioError && e.code === 'USAGE');
        assert.match(e.message, new RegExp(`3 documents are named .*${first.id}`));
        return true;
      });
    });

    it('refuses to fetch an upload that is not complete, naming --resume', async () => {
      const id = (await query<{ id: string }>(server, `INSERT INTO dataio.documents (id, name, chunk_size, state) VALUES (gen_random_uuid(), $1, 1024, 'uploading') RETURNING id`, [uniqueName('partial')]))[0]?.id ?? '';
      await assert.rejects(get(id, join(dir, 'partial.out')), (e: unknown) => {
        assert.ok(e instanceof DataioError && e.code === 'DOC_STATE', String(e));
        assert.match(e.message, /is not complete/);
        assert.match(e.hint ?? '', new RegExp(`--resume ${id}`));
        return true;
      });
      assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('.partial.out')), []);
    });

    it('fails a fetch of a document with one flipped stored byte, and leaves no file', async () => {
      const data = randomBytes(5 * 65536 + 99);
      const r = await put({ input: file('flip.bin', data), chunkSize: 65536 });
      await query(server, `UPDATE dataio.chunks SET data = overlay(data PLACING set_byte('\\x00'::bytea, 0, 255 - get_byte(data, 777)) FROM 778 FOR 1) WHERE doc = $1 AND seq = 3`, [r.id]);
      const out = join(dir, 'flip.out');
      await assert.rejects(get(r.id, out), dataioError('INTEGRITY', /chunk 3 \(bytes 196608–262143\) does not match its SHA-256/));
      assert.deepEqual(readdirSync(dir).filter((n) => n.includes('flip.out')), [], 'neither the file nor its temporary');
    });

    it('resumes an interrupted upload, sending only the missing chunks', async () => {
      const data = randomBytes(20 * 65536 + 5);
      const p = file('resume.bin', data);
      const r = await put({ input: p, chunkSize: 65536 });
      // Make it look interrupted: holes in the middle and a missing tail.
      await query(server, `DELETE FROM dataio.chunks WHERE doc = $1 AND (seq IN (3, 4, 9) OR seq >= 17)`, [r.id]);
      await query(server, `UPDATE dataio.documents SET state = 'uploading', sha256 = NULL, chunks_sha256 = NULL, chunk_count = NULL, completed_at = NULL WHERE id = $1`, [r.id]);
      const again = await put({ input: p, resume: r.id });
      assert.deepEqual([again.id, again.sent, again.reused, again.sha256], [r.id, 7, 14, sha(data)]);
      const out = join(dir, 'resume.out');
      await get(r.id, out);
      assert.ok(readFileSync(out).equals(data));
      await assert.rejects(put({ input: p, resume: r.id }), dataioError('DOC_STATE', /already complete/));
    });

    it('refuses to resume with another file, and leaves the upload resumable with the right one', async () => {
      const data = randomBytes(12 * 65536);
      const p = file('right.bin', data);
      const r = await put({ input: p, chunkSize: 65536 });
      await query(server, `DELETE FROM dataio.chunks WHERE doc = $1 AND seq IN (1, 2, 10)`, [r.id]);
      await query(server, `UPDATE dataio.documents SET state = 'uploading', sha256 = NULL, chunks_sha256 = NULL, chunk_count = NULL, completed_at = NULL WHERE id = $1`, [r.id]);
      // Same size, same first chunk, other bytes from chunk 5 on: chunks 1 and 2 go in before the
      // difference shows; they must be taken out again.
      const other = Buffer.from(data);
      other[5 * 65536 + 1] = (other[5 * 65536 + 1] ?? 0) ^ 0xff;
      await assert.rejects(put({ input: file('wrong.bin', other), resume: r.id }), dataioError('INTEGRITY', /is not the input whose upload .* was interrupted: its chunk 5 .* differs/));
      const seqs = await query<{ seq: number }>(server, 'SELECT seq FROM dataio.chunks WHERE doc = $1 ORDER BY seq', [r.id]);
      assert.deepEqual(
        seqs.map((s) => s.seq),
        [0, 3, 4, 5, 6, 7, 8, 9, 11],
      );
      await assert.rejects(put({ input: file('short.bin', data.subarray(0, 1000)), resume: r.id }), dataioError('INTEGRITY', /it is 1000 bytes, the interrupted upload 786432/));
      const ok = await put({ input: p, resume: r.id });
      assert.equal(ok.sent, 3);
    });

    it('removes a document in batches; it is gone afterwards', async () => {
      const r = await put({ input: file('rm.bin', randomBytes(10 * 65536)), chunkSize: 65536 });
      const rm = await removeDocument(target, { ref: r.id, batchBytes: 3 * 65536 }, { progress: () => QUIET });
      assert.deepEqual([rm.chunks, rm.batches], [10, 4]);
      const left = await query<{ n: number }>(server, 'SELECT (SELECT count(*)::int FROM dataio.chunks WHERE doc = $1) + (SELECT count(*)::int FROM dataio.documents WHERE id = $1) AS n', [r.id]);
      assert.equal(left[0]?.n, 0);
      await assert.rejects(get(r.id, join(dir, 'rm.out')), dataioError('DOC_NOT_FOUND', /no stored document/));
      const all = await withClient(server, (c) => listDocuments(c));
      assert.ok(!all.some((d) => d.id === r.id));
    });

    it('parses the binary COPY output of the server itself', async () => {
      const rows: CopyRow[] = [];
      await withClient(server, async (c) => {
        const parser = new BinaryCopyParser();
        const stream = c.query(copyTo(`COPY (SELECT 7::int4, NULL::bytea, ''::bytea, convert_to(repeat('ab€', 100000), 'UTF8')) TO STDOUT (FORMAT binary)`));
        for await (const piece of stream as AsyncIterable<Buffer>) rows.push(...parser.push(piece));
        parser.end();
      });
      assert.equal(rows.length, 1);
      const [n, nul, empty, text] = rows[0] ?? [];
      assert.equal(n?.readInt32BE(0), 7);
      assert.equal(nul, null);
      assert.equal(empty?.length, 0);
      assert.equal(text?.toString('utf8'), 'ab€'.repeat(100000));
    });
  });

  describe(`the dataio schema on ${server.name}`, () => {
    const databases: string[] = [];
    const roles: string[] = [];
    const freshDatabase = async () => {
      const db = uniqueName('docs_db');
      await query(server, `CREATE DATABASE ${db}`);
      databases.push(db);
      return db;
    };
    after(async () => {
      for (const db of databases) await query(server, `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      for (const role of roles) await query(server, `DROP ROLE IF EXISTS ${role}`);
    });

    it('is created once when several sessions race to create it', async () => {
      const db = await freshDatabase();
      const url = withUrlPath(server.url, db);
      const clients = await Promise.all(
        Array.from({ length: 6 }, async () => {
          const c = new pg.Client({ connectionString: url });
          await c.connect();
          return c;
        }),
      );
      try {
        await Promise.all(clients.map((c) => ensureSchema(c)));
      } finally {
        await Promise.all(clients.map((c) => c.end()));
      }
      const tables = await query<{ t: string }>({ ...server, url } as TestServer, `SELECT tablename AS t FROM pg_tables WHERE schemaname = 'dataio' ORDER BY 1`);
      assert.deepEqual(
        tables.map((r) => r.t),
        ['chunks', 'document_readers', 'documents'],
      );
    });

    it('says clearly when the role may not create it', async () => {
      const db = await freshDatabase();
      const role = uniqueName('docs_role');
      await query(server, `CREATE ROLE ${role} LOGIN PASSWORD 'pw-${role}'`);
      roles.push(role);
      const url = withUrlPath(server.url, db, { name: role, password: `pw-${role}` });
      const p = join(mkdtempSync(join(tmpdir(), 'dataio-docs-')), 'x.bin');
      writeFileSync(p, 'x');
      await assert.rejects(
        putDocument(targetOf(url), { input: p, workers: 1 }, { progress: () => QUIET, started: () => undefined }),
        (e: unknown) => {
          assert.ok(e instanceof DataioError && e.code === 'DB_PERMISSION', String(e));
          assert.match(e.message, new RegExp(`^role ${role} may not create the dataio schema, which stores documents \\(in database ${db}\\): permission denied`));
          assert.match(e.hint ?? '', new RegExp(`dataio setup --grant ${role}\\b.*CREATE SCHEMA dataio AUTHORIZATION ${role}`));
          return true;
        },
      );
      // Reading commands never create it, and see no documents.
      const docs = await withClient({ ...server, url } as TestServer, (c) => listDocuments(c));
      assert.deepEqual(docs, []);
    });
  });
}
