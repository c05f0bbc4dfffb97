import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planRanges } from '../../src/export/ranges.js';
import { estimateSql, exportCopySql, normalizeQuery, type ExportSource } from '../../src/export/sql.js';

const TABLE: ExportSource = { kind: 'table', sql: '"public"."t"', plain: true };
const VIEW: ExportSource = { kind: 'table', sql: '"public"."v"', plain: false };
const QUERY: ExportSource = { kind: 'query', sql: 'select 1 as a -- note' };

describe('export SQL', () => {
  it('a plain table is COPY t TO, as psql users write it', () => {
    assert.equal(exportCopySql(TABLE, 'csv', true), 'COPY "public"."t" TO STDOUT (FORMAT csv, HEADER)');
    assert.equal(exportCopySql(TABLE, 'tsv', false), 'COPY "public"."t" TO STDOUT (FORMAT text)');
  });

  it('a view, or a query on its own lines (a trailing -- comment must not eat the parenthesis)', () => {
    assert.equal(exportCopySql(VIEW, 'csv', true), 'COPY (SELECT * FROM "public"."v" AS dataio_row) TO STDOUT (FORMAT csv, HEADER)');
    assert.equal(exportCopySql(QUERY, 'csv', false), 'COPY (\nselect 1 as a -- note\n) TO STDOUT (FORMAT csv)');
  });

  it('JSON rows come from row_to_json of the whole row through a text-format COPY', () => {
    assert.equal(
      exportCopySql(TABLE, 'ndjson', true),
      'COPY (SELECT row_to_json(dataio_row.*) FROM "public"."t" AS dataio_row) TO STDOUT (FORMAT text)',
    );
    assert.match(exportCopySql(QUERY, 'json', true), /FROM \(\nselect 1 as a -- note\n\) AS dataio_row\) TO STDOUT/);
  });

  it('block ranges: open at both ends where they say so', () => {
    assert.equal(
      exportCopySql(TABLE, 'csv', true, { from: undefined, to: 100 }),
      `COPY (SELECT * FROM "public"."t" AS dataio_row WHERE dataio_row.ctid < '(100,0)'::tid) TO STDOUT (FORMAT csv, HEADER)`,
    );
    assert.equal(
      exportCopySql(TABLE, 'csv', false, { from: 100, to: 200 }),
      `COPY (SELECT * FROM "public"."t" AS dataio_row WHERE dataio_row.ctid >= '(100,0)'::tid AND dataio_row.ctid < '(200,0)'::tid) TO STDOUT (FORMAT csv)`,
    );
    assert.equal(exportCopySql(TABLE, 'csv', false, { from: undefined, to: undefined }), 'COPY "public"."t" TO STDOUT (FORMAT csv)');
    assert.match(exportCopySql(TABLE, 'ndjson', false, { from: 5, to: undefined }), /WHERE dataio_row\.ctid >= '\(5,0\)'::tid\) TO STDOUT/);
  });

  it('queries lose trailing semicolons; an empty query is a usage error', () => {
    assert.equal(normalizeQuery('select 1;\n  ;\n'), 'select 1');
    assert.throws(() => normalizeQuery(' ;\n'), /empty/);
  });

  it('the estimate explains the table or the query itself', () => {
    assert.equal(estimateSql(TABLE), 'EXPLAIN (FORMAT JSON) SELECT * FROM "public"."t"');
    assert.equal(estimateSql(QUERY), 'EXPLAIN (FORMAT JSON)\nselect 1 as a -- note');
  });
});

describe('planRanges', () => {
  function covered(blocks: number, workers: number, max?: number): void {
    const r = planRanges(blocks, workers, max);
    assert.equal(r[0]?.from, undefined, 'the first range is open below');
    assert.equal(r.at(-1)?.to, undefined, 'the last range is open above');
    for (let i = 1; i < r.length; i++) assert.equal(r[i]?.from, r[i - 1]?.to, 'ranges meet without gaps or overlaps');
  }

  it('covers every block, with open ends', () => {
    for (const [b, w] of [[0, 4], [1, 1], [15, 4], [100, 4], [25_000, 2], [1_000_000, 8]] as const) covered(b, w);
  });

  it('one range per worker at least, for a table that is big enough', () => {
    assert.equal(planRanges(100, 4).length, 4);
    assert.equal(planRanges(10, 4).length, 1, 'tiny tables are not cut');
  });

  it('ranges stay at most max blocks', () => {
    const r = planRanges(10_000, 2, 1024);
    assert.equal(r.length, 10);
    assert.deepEqual(r[1], { from: 1024, to: 2048 });
  });
});
