import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DelimitedRecords } from '../../src/import/cut/csv-records.js';
import { defaultRejectsPath, InOrder } from '../../src/import/load/rejects.js';
import { csvDialect, TEXT_DIALECT } from '../../src/import/cut/scanner.js';
import { loadSkipping, type RecordSet } from '../../src/import/load/skip.js';
import type { Batch } from '../../src/import/cut/batcher.js';

/** Records 0..n-1, one per line: line N of an attempt over [a, b) is record a + N - 1. */
function lineSet(n: number): RecordSet {
  return {
    count: n,
    copyInput: () => [],
    recordAtLine: (a, b, line) => (a + line - 1 < b ? a + line - 1 : undefined),
  };
}

/**
 * A stand-in for the server's verdict on a set of records (the search logic is what is tested here;
 * the integration tests run it against real servers): records in `named` fail naming their line,
 * records in `unnamed` fail the whole attempt without a line (as a foreign key does).
 */
function judge(named: Set<number>, unnamed: Set<number>) {
  const attempts: [number, number][] = [];
  const attempt = async (a: number, b: number) => {
    attempts.push([a, b]);
    for (let i = a; i < b; i++) if (named.has(i)) throw Object.assign(new Error(`bad ${i}`), { line: i - a + 1 });
    for (let i = a; i < b; i++) if (unnamed.has(i)) throw Object.assign(new Error(`fk ${i}`), { line: undefined });
    return b - a;
  };
  const rowFailure = (err: unknown) => {
    const e = err as { line?: number; message: string };
    return e.message.startsWith('bad') || e.message.startsWith('fk') ? { serverLine: e.line } : undefined;
  };
  return { attempt, rowFailure, attempts };
}

describe('loadSkipping', () => {
  it('loads everything in one attempt when nothing is wrong', async () => {
    const j = judge(new Set(), new Set());
    const r = await loadSkipping(lineSet(1000), j.attempt, j.rowFailure);
    assert.equal(r.rows, 1000);
    assert.deepEqual(r.rejected, []);
    assert.deepEqual(j.attempts, [[0, 1000]]);
  });

  it('rejects exactly the records the server names, in input order, with one attempt per bad record and gap', async () => {
    const bad = new Set([0, 5, 6, 500, 999]);
    const j = judge(bad, new Set());
    const r = await loadSkipping(lineSet(1000), j.attempt, j.rowFailure);
    assert.equal(r.rows, 995);
    assert.deepEqual(
      r.rejected.map((x) => x.index),
      [0, 5, 6, 500, 999],
    );
    assert.ok(j.attempts.length <= 2 * bad.size + 2, `${j.attempts.length} attempts`);
  });

  it('bisects down to the records that fail without a line (foreign keys), and mixes both kinds', async () => {
    const j = judge(new Set([10, 700]), new Set([3, 333, 998]));
    const r = await loadSkipping(lineSet(1000), j.attempt, j.rowFailure);
    assert.equal(r.rows, 995);
    assert.deepEqual(
      r.rejected.map((x) => x.index),
      [3, 10, 333, 700, 998],
    );
    // A bisection costs about 2·log2(n) attempts per bad record, not n.
    assert.ok(j.attempts.length < 120, `${j.attempts.length} attempts`);
  });

  it('does not try the whole set again when told how it failed', async () => {
    const j = judge(new Set([42]), new Set());
    const first = await j.attempt(0, 100).catch((e: unknown) => e);
    j.attempts.length = 0;
    const r = await loadSkipping(lineSet(100), j.attempt, j.rowFailure, first);
    assert.equal(r.rows, 99);
    assert.deepEqual(j.attempts, [
      [0, 42],
      [43, 100],
    ]);
  });

  it('rethrows an error that is not about a row, and stops there', async () => {
    const attempt = async () => {
      throw new Error('connection lost');
    };
    await assert.rejects(
      loadSkipping(lineSet(10), attempt, () => undefined),
      /connection lost/,
    );
  });

  it('rejects every record when all are bad', async () => {
    const j = judge(new Set([0, 1, 2, 3]), new Set());
    const r = await loadSkipping(lineSet(4), j.attempt, j.rowFailure);
    assert.equal(r.rows, 0);
    assert.equal(r.rejected.length, 4);
  });
});

function batchOf(text: string, firstLine = 2, offset = 100): Batch {
  const buf = Buffer.from(text);
  // Fed as several chunks, split inside records.
  const chunks = [buf.subarray(0, 7), buf.subarray(7, 20), buf.subarray(20)];
  return { index: 0, file: 0, chunks, bytes: buf.length, offset, endOffset: offset + buf.length, firstLine, lines: 0 };
}

describe('DelimitedRecords', () => {
  const csv = '1,a\n2,"b\nc\nd"\n3,"x,""y"""\n4,last';
  const set = new DelimitedRecords(batchOf(csv), csvDialect(), 'lf');

  it('cuts a batch into its records, quoted newlines kept inside', () => {
    assert.equal(set.count, 4);
    assert.equal(set.copyInput(1, 3)[0]?.toString(), '2,"b\nc\nd"\n3,"x,""y"""\n');
    assert.equal(set.copyInput(3, 4)[0]?.toString(), '4,last');
  });

  it("maps the server's physical line numbers to records", () => {
    // Over [0, 4): lines 1 | 2 3 4 | 5 | 6.
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7].map((n) => set.recordAtLine(0, 4, n)),
      [0, 1, 1, 1, 2, 3, undefined],
    );
    // Over [2, 4): the COPY starts at record 2.
    assert.deepEqual(
      [1, 2, 3].map((n) => set.recordAtLine(2, 4, n)),
      [2, 3, undefined],
    );
  });

  it('gives each record with its input line, byte offset and bytes', () => {
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => {
        const r = set.rejectAt(i);
        return [r.line, r.offset, r.raw.toString()];
      }),
      [
        [2, 100, '1,a\n'],
        [3, 104, '2,"b\nc\nd"\n'],
        [6, 114, '3,"x,""y"""\n'],
        [7, 126, '4,last'],
      ],
    );
  });

  it('follows CRLF files and text format escapes', () => {
    const crlf = new DelimitedRecords(batchOf('1,"a\r\nb"\r\n2,c\r\n'), csvDialect(), 'crlf');
    assert.equal(crlf.count, 2);
    assert.equal(crlf.rejectAt(1).line, 4);
    const text = new DelimitedRecords(batchOf('1\ta\\\tb\n2\tc\n'), TEXT_DIALECT, 'lf');
    assert.equal(text.count, 2);
    assert.equal(text.rejectAt(1).raw.toString(), '2\tc\n');
  });
});

describe('rejects', () => {
  it('puts the rejects file next to the input, or in the working directory for stdin', () => {
    assert.equal(defaultRejectsPath('data/big.csv', 'big', '.csv'), 'data/big.rejects.csv');
    assert.equal(defaultRejectsPath('/x/events.ndjson.gz', 'events', '.ndjson'), '/x/events.rejects.ndjson');
    assert.equal(defaultRejectsPath('noext', 't', '.csv'), 'noext.rejects.csv');
    assert.equal(defaultRejectsPath('-', 'public.my table', '.json'), 'public.my_table.rejects.json');
  });

  it('hands values on in sequence order, whatever order they come in', async () => {
    const out: number[] = [];
    const o = new InOrder<number>(async (v) => {
      out.push(v);
    });
    await o.put(2, 20);
    await o.put(1, 10);
    assert.deepEqual(out, []);
    assert.equal(o.pending, 2);
    await o.put(0, 0);
    await o.put(3, 30);
    assert.deepEqual(out, [0, 10, 20, 30]);
    assert.equal(o.pending, 0);
  });
});
