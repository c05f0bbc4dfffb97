// The byte converter (json/byte-rows.ts, the byte cutters in json/records.ts) against the string path
// it replaces on the hot path (RowBuilder, NdjsonCutter, JsonArrayCutter): the same rows byte for byte,
// the same records, lines and offsets, the same errors, on random and edge-case input fed in pieces.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ByteRowBuilder, RowWriter, wholeRecordBytesInto } from '../../src/import/cut/json/byte-rows.js';
import { JsonArrayByteCutter, JsonArrayCutter, JsonInputError, NdjsonByteCutter, NdjsonCutter } from '../../src/import/cut/json/records.js';
import { RowBuilder, wholeRecordInto, type RowColumn } from '../../src/import/cut/json/rows.js';

/** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const COLUMNS: RowColumn[] = [
  { name: 'id', json: false },
  { name: 'name', json: false },
  { name: 'doc', json: true },
  { name: 'tags', json: false },
  { name: 'é k', json: false },
];

function generator(seed: number) {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const chance = (p: number) => r() < p;
  const strings = [
    '',
    'plain',
    'a b',
    'é日本😀',
    'x\\ty',
    'x\\ny\\r\\\\z',
    '\\"q\\"',
    '\\/\\b\\f',
    '\\u00e9\\u0041\\u005c\\u0009\\u000a\\u000D',
    '\\ud83d\\ude00',
    '\\uD83D\\uDE00x',
    '\\ud800',
    '\\udc00',
    '\\ud800\\u0041',
    '\\ud83d\\ud83d\\ude00',
    '\\u0000',
    'tab\there', // raw tab: invalid JSON
    'nl\u0001', // raw control
    '\\x', // bad escape
    '\\u12', // short unicode escape
    '\\u12G4',
    'back\\\\',
    'del\u007f',
    'bom\ufeff',
    '\u2028',
  ];
  const numbers = ['0', '-0', '1', '-17', '9007199254740993', '123456789012345678901234567890.123456789', '1.5e3', '2E-7', '1e+9', '01', '1.', '-', '1.2.3', '+1', '.5', '1e', '--1', '0x10'];
  const keys = ['"id"', '"name"', '"doc"', '"tags"', '"é k"', '"\\u00e9 k"', '"\\u0069d"', '"nope"', '"na\\me"', '"bad\tkey"', '""', '"id "'];
  const ws = () => (chance(0.7) ? '' : pick([' ', '  ', '\t', '\r', ' \n ', '\r\n']));
  function str(): string {
    return `"${pick(strings)}${chance(0.2) ? pick(strings) : ''}"`;
  }
  function value(depth: number): string {
    const k = r();
    if (k < 0.3) return str();
    if (k < 0.5) return pick(numbers);
    if (k < 0.6) return pick(['true', 'false', 'null', 'tru', 'nul', 'falsey', 'True']);
    if (depth > 2) return pick(numbers);
    if (k < 0.8) {
      const n = Math.floor(r() * 4);
      const items = Array.from({ length: n }, () => ws() + value(depth + 1) + ws());
      let text = `[${items.join(',')}]`;
      if (chance(0.05)) text = pick([`[${items.join(',')},]`, `[${items.join(',')}`, `[${items.join(',')}}`, '[1 2]']);
      return text;
    }
    const n = Math.floor(r() * 4);
    const members = Array.from({ length: n }, () => `${ws()}${str()}${ws()}:${ws()}${value(depth + 1)}${ws()}`);
    let text = `{${members.join(',')}}`;
    if (chance(0.05)) text = pick([`{${members.join(',')},}`, '{"a" 1}', '{1: 2}', `{${members.join(',')}]`]);
    return text;
  }
  /** A record: mostly an object of known keys, sometimes broken in one of many ways. */
  function record(): string {
    const n = Math.floor(r() * 7);
    const members: string[] = [];
    for (let i = 0; i < n; i++) members.push(`${ws()}${chance(0.85) ? pick(keys.slice(0, 5)) : pick(keys)}${ws()}:${ws()}${value(0)}${ws()}`);
    let text = `${ws()}{${members.join(',')}}${ws()}`;
    if (chance(0.04)) text = text.slice(0, Math.floor(r() * text.length)); // truncated
    if (chance(0.02)) text += pick([' x', ',', '}', ' {}']);
    if (chance(0.02)) text = pick(['[1]', '"s"', '5', 'null', '{"id":1,}', '{"id":1 "name":"x"}', '{,}', '{"id"}']);
    return text;
  }
  /** The bench's own record shape (the common case: same keys in the same order every time). */
  function flat(i: number): string {
    const desc = i % 7 === 0 ? `has, comma and "quote" ${i}` : `plain text ${i}`;
    return `{"id":${i},"name":"name_${i}","doc":{"k":[1,"x"]},"tags":${JSON.stringify(desc)},"é k":${(i * 1.25).toFixed(2)}}`;
  }
  return { record, flat, r, pick, chance };
}

type Outcome = { row: string } | { error: string };

function stringRow(b: RowBuilder, text: string): Outcome {
  try {
    return { row: b.row(text) };
  } catch (err) {
    return { error: `${(err as Error).constructor.name}: ${(err as Error).message}` };
  }
}

function byteRow(b: ByteRowBuilder, buf: Buffer): Outcome {
  // A writer with bytes in it already: the row must go after them, and a failed record leave nothing.
  const out = new RowWriter(16);
  out.reserve(3);
  out.buf.write('abc', 0);
  out.pos = 3;
  try {
    b.rowInto(buf, 0, buf.length, out);
    const all = out.take();
    assert.equal(all.subarray(0, 3).toString(), 'abc');
    return { row: all.subarray(3).toString('latin1') };
  } catch (err) {
    assert.equal(out.length, 3, 'a failed record leaves no bytes behind');
    return { error: `${(err as Error).constructor.name}: ${(err as Error).message}` };
  }
}

/** The string path's row as the bytes it sent (Buffer.from of the row), shown as latin1 to compare with bytes. */
function asBytes(o: Outcome): Outcome {
  return 'row' in o ? { row: Buffer.from(o.row).toString('latin1') } : o;
}

describe('JSON byte converter: the same rows as the string path', () => {
  for (const ignoreUnknown of [false, true]) {
    it(`random and malformed records give the same row or the same error (ignoreUnknown ${ignoreUnknown})`, () => {
      const g = generator(ignoreUnknown ? 7 : 3);
      const strings = new RowBuilder(COLUMNS, ignoreUnknown);
      const bytes = new ByteRowBuilder(COLUMNS, ignoreUnknown);
      let rows = 0;
      for (let n = 0; n < 30_000; n++) {
        const text = n % 3 === 0 ? g.flat(n) : g.record();
        const want = asBytes(stringRow(strings, text));
        const got = byteRow(bytes, Buffer.from(text));
        assert.deepEqual(got, want, `record ${n}: ${JSON.stringify(text)}`);
        if ('row' in want) rows++;
      }
      assert.ok(rows > 10_000, `enough records were valid (${rows})`);
    });
  }

  it('keys in any order, repeated, escaped, or new between records', () => {
    const strings = new RowBuilder(COLUMNS, true);
    const bytes = new ByteRowBuilder(COLUMNS, true);
    for (const text of [
      '{"id": 1, "name": "a"}',
      '{"name": "b", "id": 2}',
      '{"id": 3, "id": 4}',
      '{"name": "\\x", "name": "ok"}',
      '{"\\u0069d": 5, "nam\\u0065": "c"}',
      '{"i": 6, "id": 7}',
      '{"idx": 8}',
      '{"id": 9, "name": "d", "doc": {"a": [1, 2, {"b": "\\t"}]}, "tags": ["x\\ty"], "é k": "é"}',
      '{"doc": "s\\\\t", "tags": "\\u0000", "é k": null}',
      '{}',
      ' {  } \r',
    ]) {
      assert.deepEqual(byteRow(bytes, Buffer.from(text)), asBytes(stringRow(strings, text)), text);
    }
  });

  it('bytes that are not UTF-8 become U+FFFD as the string path decoded them', () => {
    const strings = new RowBuilder(COLUMNS, true);
    const bytes = new ByteRowBuilder(COLUMNS, true);
    const g = generator(11);
    const junk = [[0xff], [0xc3], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf0, 0x9f, 0x98], [0x80], [0xc0, 0xaf]];
    for (let n = 0; n < 3000; n++) {
      const text = g.flat(n);
      const buf = Buffer.from(text);
      const at = 1 + Math.floor(g.r() * (buf.length - 2));
      const bad = Buffer.concat([buf.subarray(0, at), Buffer.from(g.pick(junk)), buf.subarray(at)]);
      assert.deepEqual(byteRow(bytes, bad), asBytes(stringRow(strings, bad.toString('utf8'))), `${n}: ${bad.toString('hex')}`);
    }
  });

  it('a record bigger than the batch grows the writer', () => {
    const text = `{"name": "${'x'.repeat(300_000)}", "doc": [${'1,'.repeat(100_000)}2]}`;
    const out = new RowWriter(1024);
    const bytes = new ByteRowBuilder(COLUMNS, false);
    bytes.rowInto(Buffer.from(text), 0, text.length, out);
    bytes.rowInto(Buffer.from(text), 0, text.length, out);
    const row = new RowBuilder(COLUMNS, false).row(text);
    assert.equal(out.take().toString(), row + row);
  });

  it('--jsonb-column: whole records as the string path sends them', () => {
    const g = generator(5);
    for (let n = 0; n < 10_000; n++) {
      const text = n % 2 === 0 ? g.record() : g.flat(n);
      let want: Outcome;
      try {
        const parts: string[] = [];
        wholeRecordInto(text, parts);
        want = asBytes({ row: parts.join('') });
      } catch (err) {
        want = { error: `${(err as Error).constructor.name}: ${(err as Error).message}` };
      }
      const out = new RowWriter(64);
      let got: Outcome;
      try {
        wholeRecordBytesInto(Buffer.from(text), 0, Buffer.byteLength(text), out);
        got = { row: out.take().toString('latin1') };
      } catch (err) {
        got = { error: `${(err as Error).constructor.name}: ${(err as Error).message}` };
      }
      assert.deepEqual(got, want, JSON.stringify(text));
    }
  });
});

type Cut = { records: [string, number, number][]; error?: string };

function cutStrings(format: 'ndjson' | 'json', text: string): Cut {
  const records: [string, number, number][] = [];
  const c = format === 'ndjson' ? new NdjsonCutter((t, l, o) => records.push([t, l, o])) : new JsonArrayCutter((t, l, o) => records.push([t, l, o]));
  try {
    c.push(text);
    c.end();
    return { records };
  } catch (err) {
    const e = err as JsonInputError;
    return { records, error: `${e.message} @${e.line}:${e.offset}` };
  }
}

function cutBytes(format: 'ndjson' | 'json', pieces: Buffer[]): Cut {
  const records: [string, number, number][] = [];
  const add = (b: Buffer, s: number, e: number, l: number, o: number) => records.push([b.toString('utf8', s, e), l, o]);
  const c = format === 'ndjson' ? new NdjsonByteCutter(add) : new JsonArrayByteCutter(add);
  try {
    for (const p of pieces) c.push(p);
    c.end();
    return { records };
  } catch (err) {
    const e = err as JsonInputError;
    return { records, error: `${e.message} @${e.line}:${e.offset}` };
  }
}

function piecesOf(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
  return out;
}

/** Every way to cut the input in two, one-byte pieces, and a few other sizes. */
function splits(buf: Buffer): Buffer[][] {
  const out: Buffer[][] = [[buf], piecesOf(buf, 1), piecesOf(buf, 7), piecesOf(buf, 64)];
  for (let k = 0; k <= buf.length; k++) out.push([buf.subarray(0, k), buf.subarray(k)]);
  return out;
}

function documents(seed: number, format: 'ndjson' | 'json', count: number): string[] {
  const g = generator(seed);
  const docs: string[] = [];
  for (let d = 0; d < count; d++) {
    const n = Math.floor(g.r() * 5);
    const recs = Array.from({ length: n }, (_, i) => (g.chance(0.5) ? g.flat(i) : g.record()));
    if (format === 'ndjson') {
      docs.push(recs.map((t) => t.replace(/\n/g, ' ')).join(g.pick(['\n', '\n\n', '\r\n', '\n  \n'])) + g.pick(['', '\n', ' ']));
    } else {
      const sep = () => g.pick([',', ',\n', ' , ', ',\n\t']);
      let text = `${g.pick(['', ' ', '\n'])}[${g.pick(['', '\n'])}${recs.join(sep())}${g.pick(['', '\n'])}]${g.pick(['', '\n', ' \n'])}`;
      if (g.chance(0.2)) {
        text = g.pick([
          text.slice(0, Math.floor(g.r() * text.length)),
          text + ' x',
          text.replace(',', ' '),
          '[1, -2.5e3, "s", true, null, [1]]',
          '[tru]',
          '[nul, 1]',
          '[1.2.3]',
          '[01]',
          '[{"a": [1}]',
          '[é]',
          '{"a": 1}',
          '',
          ' \n ',
          '[',
          '[]',
          '[ ]',
          '[,]',
          '[{"a":1},]',
        ]);
      }
      docs.push(text);
    }
  }
  return docs;
}

describe('JSON byte cutters: the same records, lines, offsets and errors as the string cutters', () => {
  for (const format of ['ndjson', 'json'] as const) {
    it(`${format}: random documents, fed in every split`, () => {
      for (const text of documents(format === 'json' ? 21 : 22, format, 300)) {
        const want = cutStrings(format, text);
        for (const pieces of splits(Buffer.from(text))) {
          assert.deepEqual(cutBytes(format, pieces), want, `${JSON.stringify(text)} in ${pieces.length} pieces`);
        }
      }
    });
  }

  it('a UTF-8 byte order mark is skipped, and its bytes counted in the offsets', () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    for (const [format, text] of [
      ['ndjson', '{"a":1}\n{"b":2}\n'],
      ['json', '[{"a":1},\n{"b":2}]'],
    ] as const) {
      const want = cutStrings(format, text).records.map(([t, l, o]) => [t, l, o + 3]);
      for (const pieces of splits(Buffer.concat([bom, Buffer.from(text)]))) assert.deepEqual(cutBytes(format, pieces).records, want);
    }
    // Only at the start, and only a whole one.
    assert.deepEqual(cutBytes('ndjson', [Buffer.from([0xef, 0xbb])]).records, [['\ufffd', 1, 0]]);
  });

  it('keeps a record spanning many pieces whole, copied once', () => {
    const long = `{"s": "${'x'.repeat(200_000)}", "n": [${'1,'.repeat(50_000)}1]}`;
    for (const format of ['ndjson', 'json'] as const) {
      const text = format === 'ndjson' ? `{"a":1}\n${long}\n{"b":2}` : `[{"a":1},${long},{"b":2}]`;
      const got = cutBytes(format, piecesOf(Buffer.from(text), 1000));
      assert.deepEqual(got, cutStrings(format, text));
    }
  });
});

describe('JSON byte pipeline: cutter and converter together give the string pipeline\'s bytes', () => {
  for (const format of ['ndjson', 'json'] as const) {
    it(`${format}: every split point`, () => {
      const g = generator(format === 'json' ? 31 : 32);
      const recs = Array.from({ length: 40 }, (_, i) => g.flat(i));
      const text = format === 'ndjson' ? recs.join('\n') + '\n' : `[\n${recs.join(',\n')}\n]\n`;
      const want: string[] = [];
      const strings = new RowBuilder(COLUMNS, false);
      const sc = format === 'ndjson' ? new NdjsonCutter((t) => want.push(strings.row(t))) : new JsonArrayCutter((t) => want.push(strings.row(t)));
      sc.push(text);
      sc.end();
      const wantBytes = Buffer.from(want.join(''));
      const bytes = new ByteRowBuilder(COLUMNS, false);
      for (const pieces of splits(Buffer.from(text))) {
        const out = new RowWriter(100);
        const batches: Buffer[] = [];
        const add = (b: Buffer, s: number, e: number) => {
          bytes.rowInto(b, s, e, out);
          if (out.length >= 100) batches.push(out.take());
        };
        const c = format === 'ndjson' ? new NdjsonByteCutter(add) : new JsonArrayByteCutter(add);
        for (const p of pieces) c.push(p);
        c.end();
        batches.push(out.take());
        assert.ok(Buffer.concat(batches).equals(wantBytes));
      }
    });
  }
});
