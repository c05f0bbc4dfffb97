/**
 * The pure parts of a COPY shared by several batches: the CopyData header, the row count of the
 * CommandComplete tag, a server error's line renumbered for the batch that holds it, whether a batch
 * ends at a line end.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rowsByLines } from '../../src/import/load/streamed-copy.js';
import { endsWithLineEnd } from '../../src/import/plan/delimited.js';
import { copyDataHeader, copyRowCount } from '../../src/pg/copy-in.js';
import { isPgError, parseCopyWhere, withCopyLine } from '../../src/pg/pg-errors.js';

const b = (...parts: string[]) => parts.map((p) => Buffer.from(p, 'latin1'));

describe('a shared COPY, byte by byte', () => {
  it('writes a CopyData header: d, then the length of the data plus the length field itself', () => {
    assert.deepEqual([...copyDataHeader(0)], [0x64, 0, 0, 0, 4]);
    assert.deepEqual([...copyDataHeader(1024 * 1024)], [0x64, 0x00, 0x10, 0x00, 0x04]);
  });

  it('reads the rows from the COPY tag, and nothing from any other', () => {
    assert.equal(copyRowCount('COPY 2000000'), 2_000_000);
    assert.equal(copyRowCount('COPY 0'), 0);
    assert.equal(copyRowCount('INSERT 0 5'), 0);
    assert.equal(copyRowCount(undefined), 0);
  });

  it('renumbers the line of a COPY error and keeps the rest of it, class included', () => {
    const err = Object.assign(new Error('invalid input syntax for type integer: "x"'), {
      code: '22P02',
      severity: 'ERROR',
      where: 'COPY t, line 12345, column id: "x"',
      detail: 'd',
    });
    const moved = withCopyLine(err, 17);
    assert.equal(moved.where, 'COPY t, line 17, column id: "x"');
    assert.deepEqual(parseCopyWhere(moved.where), { line: 17, column: 'id' });
    assert.equal(moved.message, err.message);
    assert.equal(moved.detail, 'd');
    assert.equal(moved.code, '22P02');
    assert.ok(isPgError(moved) && moved instanceof Error);
    assert.equal(err.where, 'COPY t, line 12345, column id: "x"', 'the original is left as it was');
    const noLine = Object.assign(new Error('m'), { code: '23505', severity: 'ERROR', where: undefined });
    assert.equal(withCopyLine(noLine, 3).where, undefined);
  });

  it('tells whether a batch ends at a line end, by its last non-empty chunk and the file line ending', () => {
    assert.equal(endsWithLineEnd({ chunks: b('a\n', 'b\n') }, 'lf'), true);
    assert.equal(endsWithLineEnd({ chunks: b('a\r\nb\r\n', '') }, 'crlf'), true);
    assert.equal(endsWithLineEnd({ chunks: b('a\rb\r') }, 'cr'), true);
    assert.equal(endsWithLineEnd({ chunks: b('a\nb') }, 'lf'), false);
    assert.equal(endsWithLineEnd({ chunks: b('a\r') }, 'lf'), false);
    assert.equal(endsWithLineEnd({ chunks: b('a\n') }, null), false);
    assert.equal(endsWithLineEnd({ chunks: [] }, 'lf'), false);
  });

  it('counts a last line without a line ending as a row', () => {
    assert.equal(rowsByLines({ lines: 10, endsLine: true, group: 'lf' }), 10);
    assert.equal(rowsByLines({ lines: 10, endsLine: false, group: 'lf' }), 11);
  });
});
