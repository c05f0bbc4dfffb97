import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Batcher, type Batch } from '../../src/import/cut/batcher.js';
import { endOf, endsAtRecord, FileJoiner, lineOf, type FileEnd } from '../../src/import/cut/join-files.js';
import { countLines, csvDialect, makeScanner, TEXT_DIALECT, type Dialect, type Eol } from '../../src/import/cut/scanner.js';

const CSV = csvDialect();

/** One file's data (no header) cut into batches as DelimitedInput does, in chunks of `piece` bytes. */
function fileBatches(data: Buffer, file: number, d: Dialect, eol: Eol, batchSize: number, piece: number): { batches: Batch[]; end: FileEnd } {
  const batcher = new Batcher({ batchSize, scanner: makeScanner(d, eol), eol, startOffset: 10, startLine: 2, file });
  const batches: Batch[] = [];
  for (let i = 0; i < data.length; i += piece) batches.push(...batcher.push(data.subarray(i, i + piece)));
  const last = batcher.end();
  if (last) batches.push(last);
  const tail = batches.at(-1) as Batch;
  return { batches, end: { eol, clean: tail.bytes < batchSize && !batcher.inQuote && endsAtRecord(tail, d, eol) } };
}

/** Every file through a FileJoiner, as DelimitedInput.batches does. */
function joined(files: { data: Buffer; d?: Dialect; eol?: Eol }[], batchSize: number, piece = 7): Batch[] {
  const joiner = new FileJoiner(batchSize);
  const out: Batch[] = [];
  files.forEach((f, i) => {
    const { batches, end } = fileBatches(f.data, i, f.d ?? CSV, f.eol ?? 'lf', batchSize, piece);
    batches.forEach((b, k) => out.push(...joiner.push(b, k === batches.length - 1 ? end : undefined)));
  });
  const held = joiner.end();
  if (held) out.push(held);
  return out;
}

const bytes = (b: Batch) => Buffer.concat(b.chunks).toString();
const rows = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i},"x ${i}"\n`).join('');

describe('joining small files into one batch', () => {
  it('gives every byte once, in order, in batches no larger than the batch size, numbered anew', () => {
    const files = Array.from({ length: 30 }, (_, i) => ({ data: Buffer.from(rows(`f${i}-`, 1 + (i % 4))) }));
    for (const size of [40, 100, 1000, 100_000]) {
      const out = joined(files, size);
      assert.equal(out.map(bytes).join(''), files.map((f) => f.data.toString()).join(''), `batch size ${size}`);
      assert.deepEqual(out.map((b) => b.index), out.map((_, i) => i));
      for (const b of out) if ((b.segments?.length ?? 1) > 1) assert.ok(b.bytes <= size, `a joined batch of ${b.bytes} bytes > ${size}`);
      assert.equal(out.reduce((n, b) => n + b.lines, 0), files.reduce((n, f) => n + countLines(f.data, 'lf'), 0));
    }
    // 30 files of ~12-50 bytes each: about 9 per 100-byte batch, one batch with a large size.
    assert.equal(joined(files, 100_000).length, 1);
    assert.ok(joined(files, 100).length < 15);
  });

  it('does not join past a file without a final line ending, or one that ends inside quotes', () => {
    const noNewline = joined([{ data: Buffer.from('a,1\nb,2') }, { data: Buffer.from('c,3\n') }, { data: Buffer.from('d,4\n') }], 1000);
    assert.deepEqual(noNewline.map(bytes), ['a,1\nb,2', 'c,3\nd,4\n']);
    const inQuote = joined([{ data: Buffer.from('a,"open\n') }, { data: Buffer.from('b,"x"\n') }], 1000);
    assert.deepEqual(inQuote.map(bytes), ['a,"open\n', 'b,"x"\n']);
    // Text format: a backslash makes the line ending data, not the end of the record.
    const escaped = joined([{ data: Buffer.from('a\tb\\\n'), d: TEXT_DIALECT }, { data: Buffer.from('c\td\n'), d: TEXT_DIALECT }], 1000);
    assert.deepEqual(escaped.map(bytes), ['a\tb\\\n', 'c\td\n']);
  });

  it('does not join files with other line endings (one COPY takes one)', () => {
    const out = joined([{ data: Buffer.from('a,1\r\n'), eol: 'crlf' }, { data: Buffer.from('b,2\n') }, { data: Buffer.from('c,3\n') }], 1000);
    assert.deepEqual(out.map(bytes), ['a,1\r\n', 'b,2\nc,3\n']);
  });

  it('keeps a large file\'s batches as they are and joins only its small end with what follows', () => {
    const big = Buffer.from(rows('big', 40));
    const out = joined([{ data: Buffer.from('s,0\n') }, { data: big }, { data: Buffer.from('t,1\n') }], 100);
    assert.equal(out.map(bytes).join(''), `s,0\n${big.toString()}t,1\n`);
    assert.equal(out[0]?.segments, undefined, 'the first small file goes alone: the big file comes next');
    const tail = out.at(-1) as Batch;
    assert.deepEqual(tail.segments?.map((s) => s.file), [1, 2]);
  });

  it('names each line\'s file and line in a joined batch, and where it ends', () => {
    // Data starts on line 2 of each file (after its header), at offset 10.
    const out = joined([{ data: Buffer.from('a,1\na,2\n') }, { data: Buffer.from('b,1\n') }, { data: Buffer.from('c,1\nc,"2\n2"\nc,3\n') }], 1000);
    assert.equal(out.length, 1);
    const b = out[0] as Batch;
    const where = [1, 2, 3, 4, 5, 6, 7].map((n) => lineOf(b, n));
    assert.deepEqual(where, [
      { file: 0, line: 2 },
      { file: 0, line: 3 },
      { file: 1, line: 2 },
      { file: 2, line: 2 },
      { file: 2, line: 3 },
      { file: 2, line: 4 },
      { file: 2, line: 5 },
    ]);
    assert.deepEqual(endOf(b), { file: 2, endOffset: 10 + Buffer.byteLength('c,1\nc,"2\n2"\nc,3\n') });
    // Not joined: the batch's own numbers.
    const single = joined([{ data: Buffer.from('a,1\na,2\n') }], 1000)[0] as Batch;
    assert.deepEqual(lineOf(single, 2), { file: 0, line: 3 });
    assert.deepEqual(endOf(single), { file: 0, endOffset: 18 });
  });

  it('releases every part\'s buffers when a joined batch is released', () => {
    const released: number[] = [];
    const joiner = new FileJoiner(1000);
    const part = (file: number): Batch => ({ index: 0, file, chunks: [Buffer.from('x\n')], bytes: 2, offset: 0, endOffset: 2, firstLine: 1, lines: 1, release: () => released.push(file) });
    const end: FileEnd = { eol: 'lf', clean: true };
    assert.deepEqual([...joiner.push(part(0), end), ...joiner.push(part(1), end), ...joiner.push(part(2), end)], []);
    const b = joiner.end() as Batch;
    b.release?.();
    assert.deepEqual(released, [0, 1, 2]);
  });
});

describe('endsAtRecord', () => {
  it('is true exactly when the last byte ends a record, wherever the chunks are cut', () => {
    const cases: [string, Dialect, Eol, boolean][] = [
      ['a,1\nb,2\n', CSV, 'lf', true],
      ['a,1\nb,2', CSV, 'lf', false],
      ['a,"1\n', CSV, 'lf', false],
      ['a,"1\n"\n', CSV, 'lf', true],
      ['a,1\r\n', CSV, 'crlf', true],
      ['a,1\r', CSV, 'crlf', false],
      ['a,1\r', CSV, 'cr', true],
      ['a\\\n', TEXT_DIALECT, 'lf', false],
      ['a\\\\\n', TEXT_DIALECT, 'lf', true],
      ['', CSV, 'lf', true],
    ];
    for (const [text, d, eol, want] of cases) {
      const data = Buffer.from(text);
      for (const piece of [1, 2, 3, 100]) {
        const chunks: Buffer[] = [];
        for (let i = 0; i < data.length; i += piece) chunks.push(data.subarray(i, i + piece));
        const batch: Batch = { index: 0, file: 0, chunks, bytes: data.length, offset: 0, endOffset: data.length, firstLine: 1, lines: 0 };
        assert.equal(endsAtRecord(batch, d, eol), want, `${JSON.stringify(text)} in pieces of ${piece}`);
      }
    }
  });
});
