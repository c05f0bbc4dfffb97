/**
 * PostgreSQL's end-of-data marker `\.` in a batch's chunks, byte by byte, under each server's rule
 * (src/import/cut/end-marker.ts): a whole line (text format, 18 and later), any unescaped `\.` ending a
 * line (text format before 18), a record that is only `\.` (CSV before 18).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { endMarkerRule, endOfData, type EndMarkerRule } from '../../src/import/cut/end-marker.js';
import { DelimitedRecords } from '../../src/import/cut/csv-records.js';
import { csvDialect, type Eol } from '../../src/import/cut/scanner.js';

const b = (...parts: string[]) => parts.map((p) => Buffer.from(p, 'latin1'));
const CSV = csvDialect();
/** The line the marker is on (-1: none), and whether it is alone there ('+' after the number when not). */
function at(rule: EndMarkerRule, eol: Eol, ...parts: string[]): string {
  const chunks = b(...parts);
  const bytes = chunks.reduce((n, c) => n + c.length, 0);
  // Record starts as a failed batch's records are found (csv-records.ts).
  const records = new DelimitedRecords({ index: 0, file: 0, chunks, bytes, offset: 0, endOffset: bytes, firstLine: 1, lines: 0 }, CSV, eol);
  const found = endOfData(chunks, eol, rule, (offset) => records.startsAt(offset));
  return found === undefined ? '-1' : `${found.line}${found.alone ? '' : '+'}`;
}

describe('which end-of-data marker a server reads', () => {
  it('text: a whole line from 18 on, any line end before; CSV: a record before 18, none from 18 on', () => {
    assert.equal(endMarkerRule('text', 180000), 'line');
    assert.equal(endMarkerRule('text', 180001), 'line');
    assert.equal(endMarkerRule('text', 170005), 'line-end');
    assert.equal(endMarkerRule('text', 150020), 'line-end');
    assert.equal(endMarkerRule('csv', 170005), 'record');
    assert.equal(endMarkerRule('csv', 180000), undefined);
  });
});

describe("the text format's end-of-data line (18 and later)", () => {
  it('is found as a whole line only, with any line ending, also split over chunks', () => {
    assert.equal(at('line', 'lf', '1\n2\n'), '-1');
    assert.equal(at('line', 'lf', '\\.\n2\n'), '0');
    assert.equal(at('line', 'lf', '1\n2\n\\.\n3\n'), '2');
    assert.equal(at('line', 'crlf', '1\r\n2\r\n\\.\r\n3\r\n'), '2');
    assert.equal(at('line', 'cr', '1\r2\r\\.\r3\r'), '2');
    assert.equal(at('line', 'lf', '1\n2\n\\.'), '2', 'the last line without a line ending');
    assert.equal(at('line', 'lf', '1\n2\n\\', '.\n3\n'), '2', 'split after the backslash');
    assert.equal(at('line', 'lf', '1\n2\n', '\\.', '\n3\n'), '2', 'a chunk of its own');
    assert.equal(at('line', 'lf', '1\n2', '\n\\.\n'), '2', 'the line ending in the chunk before');
  });

  it('is not a value that holds it, nor an escaped backslash', () => {
    assert.equal(at('line', 'lf', 'a\\.\n'), '-1');
    assert.equal(at('line', 'lf', '\\.a\n'), '-1');
    assert.equal(at('line', 'lf', '\\\\.\n'), '-1');
    assert.equal(at('line', 'lf', 'x\t\\.\n'), '-1');
    assert.equal(at('line', 'lf', '\\N\t\\\\\n\\.x\n'), '-1');
  });
});

describe("the text format's end-of-data marker before 18", () => {
  it('ends any line, the backslash not escaped, also split over chunks', () => {
    assert.equal(at('line-end', 'lf', '1\tx\n2\t\\.\n3\ty\n'), '1+');
    assert.equal(at('line-end', 'lf', '1\tx\n\\.\n3\ty\n'), '1');
    assert.equal(at('line-end', 'crlf', '1\tx\r\n2\tab\\.\r\n3\r\n'), '1+');
    assert.equal(at('line-end', 'cr', '1\r2\tz\\.\r3\r'), '1+');
    assert.equal(at('line-end', 'lf', '1\n2\t\\.'), '1+', 'the last line without a line ending');
    assert.equal(at('line-end', 'lf', '1\n2\t\\', '.', '\n3\n'), '1+', 'split over chunks');
    assert.equal(at('line-end', 'lf', '1\n2\t\\\\\\.\n'), '1+', 'an escaped backslash, then the marker');
  });

  it('is not an escaped backslash and a dot, nor \\. with more after it', () => {
    assert.equal(at('line-end', 'lf', '1\t\\\\.\n2\n'), '-1');
    assert.equal(at('line-end', 'lf', '1\t\\\\', '\\\\.\n2\n'), '-1', 'two escaped backslashes over chunks');
    assert.equal(at('line-end', 'lf', '1\t\\.x\n2\n'), '-1');
    assert.equal(at('line-end', 'lf', '1\ta.b\n2\n'), '-1');
  });
});

describe('the CSV end-of-data record before 18', () => {
  it('is a record that is only \\., not such a line inside a quoted value', () => {
    assert.equal(at('record', 'lf', 'a\n\\.\nb\n'), '1');
    assert.equal(at('record', 'lf', '\\.\nb\n'), '0');
    assert.equal(at('record', 'lf', 'a,"two\n\\.\nlines"\nb\n'), '-1');
    assert.equal(at('record', 'lf', 'a,"two\n\\.\nlines"\n\\.\nb\n'), '3', 'the next one, a record of its own');
    assert.equal(at('record', 'crlf', 'a\r\nb,"x\r\n\\.\r\n"\r\n\\.\r\nc\r\n'), '4');
    assert.equal(at('record', 'lf', 'a\n', '"\\', '.\n', '"\n', '\\.', '\n'), '3', 'split over chunks, the quoted one first');
  });

  it('is not a value that holds it, nor a quoted \\.', () => {
    assert.equal(at('record', 'lf', 'a,\\.\nb\n'), '-1');
    assert.equal(at('record', 'lf', '"\\."\nb\n'), '-1');
    assert.equal(at('record', 'lf', '\\.,x\nb\n'), '-1');
  });
});
