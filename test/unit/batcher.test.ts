import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Batcher, type Batch } from '../../src/import/cut/batcher.js';
import { csvDialect, findFirstRecord, makeScanner, TEXT_DIALECT, type Dialect, type Eol } from '../../src/import/cut/scanner.js';
import { rampedBatchSize } from '../../src/workers.js';
import { generateCsv } from '../support/csvgen.js';

/** Independent reference: record end offsets by a plain byte loop over the whole input. */
function referenceEnds(buf: Buffer, d: Dialect, eol: Eol): number[] {
  const nl = eol === 'cr' ? 0x0d : 0x0a;
  const ends: number[] = [];
  let inQuote = false;
  let esc = false;
  for (let i = 0; i < buf.length; i++) {
    const b = buf[i];
    if (esc) {
      esc = false;
      continue;
    }
    if (d.escape !== null && d.escape !== d.quote && b === d.escape && (d.escapeAlways || inQuote)) {
      esc = true;
      continue;
    }
    if (b === d.quote) inQuote = !inQuote;
    else if (b === nl && !inQuote) ends.push(i + 1);
  }
  return ends;
}

function pieces(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
  return out;
}

function runBatcher(buf: Buffer, d: Dialect, eol: Eol, batchSize: number, pieceSize: number, ramp = false): Batch[] {
  const b = new Batcher({ batchSize, ramp, scanner: makeScanner(d, eol), eol, startOffset: 0, startLine: 1 });
  const out: Batch[] = [];
  for (const p of pieces(buf, pieceSize)) out.push(...b.push(p));
  const last = b.end();
  if (last) out.push(last);
  return out;
}

function check(buf: Buffer, d: Dialect, eol: Eol, batchSize: number, ramp = false, pieceSizes = [1, 7, 65536]): Batch[] {
  const ends = new Set(referenceEnds(buf, d, eol));
  let expected: Batch[] | undefined;
  for (const pieceSize of pieceSizes) {
    const batches = runBatcher(buf, d, eol, batchSize, pieceSize, ramp);
    // Nothing lost, nothing doubled, in order.
    assert.equal(Buffer.concat(batches.flatMap((x) => x.chunks)).toString('hex'), buf.toString('hex'));
    let offset = 0;
    let line = 1;
    for (const [i, batch] of batches.entries()) {
      assert.equal(batch.offset, offset);
      assert.equal(batch.firstLine, line);
      assert.equal(batch.bytes, batch.chunks.reduce((n, c) => n + c.length, 0));
      offset += batch.bytes;
      line += batch.lines;
      // Every batch but the last ends exactly at a record end, at the first one past batchSize.
      if (i < batches.length - 1) {
        assert.ok(ends.has(offset), `batch ${i} ends at ${offset}, not a record end`);
        const target = rampedBatchSize(batchSize, i, ramp);
        const firstAfter = [...ends].find((e) => e >= batch.offset + target + 1);
        assert.equal(offset, firstAfter, 'cut at the first record end at or after the target');
      }
    }
    // The cut does not depend on how the input was chunked.
    const shape = batches.map((x) => [x.offset, x.bytes, x.firstLine, x.lines]);
    if (expected === undefined) expected = batches;
    else assert.deepEqual(shape, expected.map((x) => [x.offset, x.bytes, x.firstLine, x.lines]));
  }
  return expected ?? [];
}

/** Rows of generateCsv's 4-column CSV (about 26 bytes each) for a little over 3 MiB. */
const ROWS_3MB = 140_000;

describe('Batcher', () => {
  it('cuts random CSV at record ends for any batch size and any chunking (LF, CRLF, CR)', () => {
    for (let seed = 1; seed <= 40; seed++) {
      for (const [eolText, eol] of [['\n', 'lf'], ['\r\n', 'crlf'], ['\r', 'cr']] as const) {
        const { text } = generateCsv(seed, { rows: 30, cols: 3, eol: eolText, finalNewline: seed % 2 === 0, bom: false, newlinesInQuotes: true });
        const buf = Buffer.from(text);
        for (const bs of [1, 16, 100, 1024]) check(buf, csvDialect(), eol, bs);
      }
    }
  });

  it('ramp: the first four batches aim at 1/16, 1/8, 1/4, 1/2 of the batch size (never below 64 KiB), then the batch size', () => {
    const mib = 1024 * 1024;
    assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => rampedBatchSize(4 * mib, i, true)), [mib / 4, mib / 2, mib, 2 * mib, 4 * mib, 4 * mib]);
    assert.deepEqual([0, 1, 2, 3, 4].map((i) => rampedBatchSize(4 * mib, i, false)), [4 * mib, 4 * mib, 4 * mib, 4 * mib, 4 * mib]);
    assert.deepEqual([0, 1, 2, 3, 4].map((i) => rampedBatchSize(mib, i, true)), [64 * 1024, 128 * 1024, 256 * 1024, 512 * 1024, mib]);
    assert.deepEqual([0, 3, 4].map((i) => rampedBatchSize(100 * 1024, i, true)), [64 * 1024, 64 * 1024, 100 * 1024]);
    assert.deepEqual([0, 4].map((i) => rampedBatchSize(1000, i, true)), [1000, 1000], 'a batch size below the floor is kept');
    // Cut on real input: every batch at the first record end past its own target, whatever the chunking.
    const { text } = generateCsv(3, { rows: ROWS_3MB, cols: 4, eol: '\n', finalNewline: true, bom: false, newlinesInQuotes: true });
    const buf = Buffer.from(text);
    assert.ok(buf.length > 3 * mib, `${buf.length} bytes`);
    const batches = check(buf, csvDialect(), 'lf', mib, true, [4096, 65536, mib]);
    assert.deepEqual(batches.slice(0, 5).map((b) => Math.round(b.bytes / 1024 / 64)), [1, 2, 4, 8, 16], 'in 64 KiB: small first, then whole');
  });

  it('keeps a record longer than a batch whole', () => {
    const { text } = generateCsv(7, { rows: 10, cols: 2, eol: '\n', finalNewline: true, bom: false, newlinesInQuotes: true, longField: 5000 });
    const buf = Buffer.from(text);
    check(buf, csvDialect(), 'lf', 64);
    const batches = runBatcher(buf, csvDialect(), 'lf', 64, 7);
    assert.ok(batches.some((b) => b.bytes > 5000));
  });

  it('never cuts inside a multibyte character', () => {
    const text = Array.from({ length: 200 }, (_, i) => `${i},日本語😀é,"x\n𝄞"`).join('\n');
    const buf = Buffer.from(text);
    for (const pieceSize of [1, 7, 65536]) {
      for (const b of runBatcher(buf, csvDialect(), 'lf', 10, pieceSize)) {
        const bytes = Buffer.concat(b.chunks);
        assert.equal(Buffer.from(bytes.toString('utf8')).toString('hex'), bytes.toString('hex'));
      }
    }
  });

  it('honours an escape distinct from the quote', () => {
    const d = csvDialect('"', '\\');
    const text = 'a,"x\\"\ny"\nb,"\\\\"\nc,"q\\"\n"\nd,e\n';
    const buf = Buffer.from(text);
    assert.deepEqual(referenceEnds(buf, d, 'lf'), [10, 17, 26, 30]);
    for (const bs of [1, 5, 12]) check(buf, d, 'lf', bs);
  });

  it('text format: a backslash makes the next byte data, even a newline', () => {
    const buf = Buffer.from('1\ta\\\nb\n2\tc\\\\\n3\t"q\n');
    assert.deepEqual(referenceEnds(buf, TEXT_DIALECT, "lf"), [7, 13, 18]);
    for (const bs of [1, 3, 9]) check(buf, TEXT_DIALECT, 'lf', bs);
  });
});

describe('findFirstRecord', () => {
  it('finds the header end and the line ending style', () => {
    const d = csvDialect();
    assert.deepEqual(findFirstRecord(Buffer.from('a,b\nc'), d, false), { end: 4, eol: 'lf' });
    assert.deepEqual(findFirstRecord(Buffer.from('a,b\r\nc'), d, false), { end: 5, eol: 'crlf' });
    assert.deepEqual(findFirstRecord(Buffer.from('a,b\rc'), d, false), { end: 4, eol: 'cr' });
    assert.deepEqual(findFirstRecord(Buffer.from('"a\nx",b\nc'), d, false), { end: 8, eol: 'lf' });
    assert.equal(findFirstRecord(Buffer.from('a,b\r'), d, false), undefined, 'CR at the end: need one more byte');
    assert.deepEqual(findFirstRecord(Buffer.from('a,b\r'), d, true), { end: 4, eol: 'cr' });
    assert.equal(findFirstRecord(Buffer.from('a,"b\n'), d, false), undefined);
    assert.deepEqual(findFirstRecord(Buffer.from('a,b'), d, true), { end: 3, eol: null });
  });
});

describe('Batcher.push', () => {
  it('yields each batch as soon as it is cut, before scanning the rest of the chunk', () => {
    const buf = Buffer.from(generateCsv(11, { rows: 5000, cols: 4, eol: '\n', finalNewline: true, bom: false, newlinesInQuotes: true }).text);
    // The furthest byte of the chunk any scanner call has reached.
    let furthest = 0;
    const inner = makeScanner(csvDialect(), 'lf');
    const scanner = {
      findEnd: (chunk: Buffer, from: number) => {
        const end = inner.findEnd(chunk, from);
        furthest = Math.max(furthest, end === -1 ? chunk.length : end);
        return end;
      },
      skip: (chunk: Buffer, from: number, to: number) => {
        inner.skip(chunk, from, to);
        furthest = Math.max(furthest, to);
      },
      get inQuote() {
        return inner.inQuote;
      },
    };
    const b = new Batcher({ batchSize: 4096, scanner, eol: 'lf', startOffset: 0, startLine: 1 });
    const batches = b.push(buf)[Symbol.iterator]();
    const first = batches.next().value as Batch;
    assert.equal(furthest, first.endOffset, 'scanned no further than the first batch');
    assert.ok(furthest < buf.length / 4);
    const rest = [...batches];
    assert.ok(rest.length > 4);
    assert.equal(furthest, buf.length, 'then the whole chunk (its tail waits for the next one)');
    assert.equal(b.end()?.endOffset, buf.length);
  });
});
