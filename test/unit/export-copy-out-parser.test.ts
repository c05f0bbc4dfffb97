import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CopyOutParser, RAW_ROWS, type RowShaper } from '../../src/export/copy-out-parser.js';
import { jsonItems, jsonLines } from '../../src/export/json-rows.js';

/** One backend message: type byte, Int32 length (counting itself), body. */
function msg(type: string, body: Buffer | string = Buffer.alloc(0)): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeUInt32BE(b.length + 4, 1);
  return Buffer.concat([head, b]);
}

const COPY_OUT_RESPONSE = msg('H', Buffer.from([0, 0, 1, 0, 0]));
const NOTICE = msg('N', 'SNOTICE\0Mhello\0\0');
const AFTER_DONE = Buffer.concat([msg('C', 'COPY 3\0'), msg('Z', 'I')]);

/** Copies of the pieces: the parser may write its output over the chunk it was given. */
function pieces(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(Buffer.from(buf.subarray(i, i + size)));
  return out;
}

interface Run {
  output: string;
  rows: number;
  rest: Buffer;
  done: boolean | undefined;
}

function run(stream: Buffer, size: number, shaper: () => RowShaper): Run {
  const parser = new CopyOutParser(shaper());
  const outs: Buffer[] = [];
  let rows = 0;
  const parts = pieces(stream, size);
  for (let k = 0; k < parts.length; k++) {
    const step = parser.push(parts[k] as Buffer);
    // Copy at once: a later chunk is a different buffer, but be strict about what was handed out.
    if (step.output !== null) outs.push(Buffer.from(step.output));
    rows += step.rows;
    if (step.rest !== undefined) {
      return { output: Buffer.concat(outs).toString('utf8'), rows, rest: Buffer.concat([step.rest, ...parts.slice(k + 1)]), done: step.done };
    }
  }
  return { output: Buffer.concat(outs).toString('utf8'), rows, rest: Buffer.alloc(0), done: undefined };
}

const SIZES = [1, 2, 5, 7, 64, 1 << 20];

describe('CopyOutParser: raw rows', () => {
  const rows = ['id,name\n', '1,"a\nb"\n', '2,😀 \\ "x"\n'];
  const stream = Buffer.concat([COPY_OUT_RESPONSE, msg('d', rows[0]), NOTICE, msg('d', rows[1]), msg('d', rows[2]), msg('c'), AFTER_DONE]);

  for (const size of SIZES) {
    it(`gives the rows' bytes, counts rows, and hands back what follows CopyDone (pieces of ${size})`, () => {
      const r = run(stream, size, () => RAW_ROWS);
      assert.equal(r.output, rows.join(''));
      assert.equal(r.rows, 3);
      assert.equal(r.done, true);
      assert.deepEqual(r.rest, AFTER_DONE);
    });
  }

  it('a row larger than many chunks comes out whole', () => {
    const big = 'x'.repeat(100_000) + '\n';
    const s = Buffer.concat([COPY_OUT_RESPONSE, msg('d', big), msg('d', 'y\n'), msg('c'), AFTER_DONE]);
    for (const size of [7, 4096, 65536]) {
      const r = run(s, size, () => RAW_ROWS);
      assert.equal(r.output, big + 'y\n');
      assert.equal(r.rows, 2);
    }
  });

  it('zero rows: no output, done', () => {
    const r = run(Buffer.concat([COPY_OUT_RESPONSE, msg('c'), AFTER_DONE]), 3, () => RAW_ROWS);
    assert.equal(r.output, '');
    assert.equal(r.rows, 0);
    assert.equal(r.done, true);
  });

  for (const size of [1, 3, 7, 1 << 20]) {
    it(`an ErrorResponse mid-stream ends the data and is handed back whole (pieces of ${size})`, () => {
      const error = Buffer.concat([msg('E', 'SERROR\0C22012\0Mdivision by zero\0\0'), msg('Z', 'I')]);
      const s = Buffer.concat([COPY_OUT_RESPONSE, msg('d', '1\n'), msg('d', '2\n'), error]);
      const r = run(s, size, () => RAW_ROWS);
      assert.equal(r.output, '1\n2\n');
      assert.equal(r.rows, 2);
      assert.equal(r.done, false);
      assert.deepEqual(r.rest, error);
    });
  }

  it('refuses bytes after the end', () => {
    const p = new CopyOutParser();
    p.push(Buffer.concat([COPY_OUT_RESPONSE, msg('c')]));
    assert.throws(() => p.push(Buffer.from('x')), /after the end/);
  });
});

describe('CopyOutParser: JSON rows from a text-format COPY, un-escaped', () => {
  // What the server sends: COPY text escaping over row_to_json's output, every backslash doubled.
  // Row 2 holds a json value that kept raw LF, CR LF and a tab, sent as \n \r\n \t.
  const wire = [
    '{"a":1,"s":"t\\\\"ab\\\\\\\\"}\n',
    '{"j":{\\n  "k": [1,\\r\\n2],\\t"x":"\\\\n"}}\n',
    '{"u":"😀","c":"\\\\u0001"}\n',
  ];
  const stream = Buffer.concat([COPY_OUT_RESPONSE, ...wire.map((w) => msg('d', w)), msg('c'), AFTER_DONE]);
  const objects = ['{"a":1,"s":"t\\"ab\\\\"}', '{"j":{   "k": [1,  2],\t"x":"\\n"}}', '{"u":"😀","c":"\\u0001"}'];

  it('the fixtures say what they mean', () => {
    assert.deepEqual(JSON.parse(objects[0] as string), { a: 1, s: 't"ab\\' });
    assert.deepEqual(JSON.parse(objects[1] as string), { j: { k: [1, 2], x: '\n' } });
    assert.deepEqual(JSON.parse(objects[2] as string), { u: '😀', c: '\u0001' });
  });

  for (const size of SIZES) {
    it(`NDJSON: one valid object per line, escapes undone, CR/LF inside a row made spaces (pieces of ${size})`, () => {
      const r = run(stream, size, jsonLines);
      assert.equal(r.output, objects.map((o) => o + '\n').join(''));
      assert.equal(r.rows, 3);
      assert.deepEqual(r.rest, AFTER_DONE);
      for (const line of r.output.trimEnd().split('\n')) JSON.parse(line);
    });

    it(`JSON array elements: ",\\n" before each, no trailing newline (pieces of ${size})`, () => {
      const r = run(stream, size, jsonItems);
      assert.equal(r.output, objects.map((o) => ',\n' + o).join(''));
      assert.equal(r.rows, 3);
    });
  }

  it('control escapes and an unknown escape, with a backslash as the last byte of a piece', () => {
    const s = Buffer.concat([COPY_OUT_RESPONSE, msg('d', 'a\\\\b\\bc\\fd\\ve\\x\n'), msg('c')]);
    for (const size of [1, 2, 3, 8, 100]) {
      assert.equal(run(s, size, jsonLines).output, 'a\\b\bc\fd\vex\n');
      assert.equal(run(s, size, jsonItems).output, ',\na\\b\bc\fd\vex');
    }
  });

  it('many rows, few backslashes: the same as a plain byte loop', () => {
    const rows: string[] = [];
    for (let k = 0; k < 3000; k++) rows.push(k % 97 === 0 ? `{"k":${k},"s":"q\\\\\\\\"}\n` : `{"k":${k}}\n`);
    const s = Buffer.concat([COPY_OUT_RESPONSE, ...rows.map((w) => msg('d', w)), msg('c')]);
    const expected = rows.map((w) => w.replace(/\\(.)/g, '$1')).join('');
    assert.match(expected, /"s":"q\\\\"/);
    for (const size of [7, 4096, 1 << 20]) assert.equal(run(s, size, jsonLines).output, expected);
  });
});
