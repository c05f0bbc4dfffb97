import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JsonSampler } from '../../src/import/plan/infer-json.js';
import { JsonArrayCutter, JsonInputError, NdjsonCutter } from '../../src/import/cut/json/records.js';
import { copyEscape, RowBuilder, UnknownKeyError } from '../../src/import/cut/json/rows.js';
import { JsonSyntaxError, scanObject } from '../../src/import/cut/json/scan.js';

type Rec = [string, number, number];

function cutArray(pieces: string[]): Rec[] {
  const out: Rec[] = [];
  const c = new JsonArrayCutter((t, l, o) => out.push([t, l, o]));
  for (const p of pieces) c.push(p);
  c.end();
  return out;
}

function cutNdjson(pieces: string[]): Rec[] {
  const out: Rec[] = [];
  const c = new NdjsonCutter((t, l, o) => out.push([t, l, o]));
  for (const p of pieces) c.push(p);
  c.end();
  return out;
}

function splits(text: string): string[][] {
  const out: string[][] = [[text], [...text]];
  for (let k = 0; k <= text.length; k++) out.push([text.slice(0, k), text.slice(k)]);
  for (let size = 2; size <= 9; size += 7) {
    const p: string[] = [];
    for (let i = 0; i < text.length; i += size) p.push(text.slice(i, i + size));
    out.push(p);
  }
  return out;
}

describe('JSON record cutting', () => {
  const arrayText = '[\n {"a": 1, "s": "x,]}\\"{["},\n {"b": [1, {"c": "é😀"}]}, {"n": -1.5e3}\n]\n';
  const at = (needle: string) => Buffer.byteLength(arrayText.slice(0, arrayText.indexOf(needle)));
  const expected: Rec[] = [
    ['{"a": 1, "s": "x,]}\\"{["}', 2, 3],
    ['{"b": [1, {"c": "é😀"}]}', 3, at('{"b"')],
    ['{"n": -1.5e3}', 3, at('{"n"')],
  ];

  it('cuts a JSON array into its elements however the text is split', () => {
    for (const pieces of splits(arrayText)) assert.deepEqual(cutArray(pieces), expected, JSON.stringify(pieces.slice(0, 3)));
  });

  it('cuts NDJSON into lines however the text is split, skipping blank lines', () => {
    const text = '{"a":1}\n\n{"b":"x\\ny"}\r\n{"c":[1,2]}';
    const want: Rec[] = [
      ['{"a":1}', 1, 0],
      ['{"b":"x\\ny"}\r', 3, 9],
      ['{"c":[1,2]}', 4, 23],
    ];
    for (const pieces of splits(text)) assert.deepEqual(cutNdjson(pieces), want);
  });

  it('keeps a line longer than many pieces whole', () => {
    const long = `{"s": "${'x'.repeat(200_000)}"}`;
    const text = `{"a":1}\n${long}\n{"b":2}`;
    const pieces: string[] = [];
    for (let i = 0; i < text.length; i += 1000) pieces.push(text.slice(i, i + 1000));
    assert.deepEqual(
      cutNdjson(pieces).map(([t, l]) => [t.length, l]),
      [
        [7, 1],
        [long.length, 2],
        [7, 3],
      ],
    );
  });

  it('takes an empty array, with or without whitespace', () => {
    assert.deepEqual(cutArray(['[]']), []);
    assert.deepEqual(cutArray([' [ \n ', ' ] \n']), []);
  });

  it('reports truncated and malformed arrays with their byte offset', () => {
    const fails = (pieces: string[], re: RegExp) =>
      assert.throws(() => cutArray(pieces), (err: unknown) => err instanceof JsonInputError && re.test(err.message));
    fails([''], /empty/);
    fails(['[{"a":1}, {"b":'], /ends inside element 2/);
    fails(['[{"a":1}'], /ends inside the array/);
    fails(['[{"a":1},]'], /element 2/);
    fails(['{"a":1}'], /expected a JSON array/);
    fails(['[{"a":1}] x'], /after the end of the array/);
    fails(['[{"a":1} {"b":2}]'], /expected ',' or ']'/);
    try {
      cutArray(['[{"a":1},\n  {"b":2} 7]']);
    } catch (err) {
      assert.ok(err instanceof JsonInputError);
      assert.equal(err.line, 2);
      assert.equal(err.offset, 20, 'the offset of the unexpected 7');
    }
  });
});

describe('JSON records to COPY rows', () => {
  const cols = [
    { name: 'id', json: false },
    { name: 'amount', json: false },
    { name: 'name', json: false },
    { name: 'doc', json: true },
    { name: 'tags', json: false },
  ];

  it('keeps big integers and long decimals exactly as written', () => {
    const b = new RowBuilder(cols, false);
    assert.equal(
      b.row('{"id": 9007199254740993, "amount": 123456789012345678901234567890.123456789}'),
      '9007199254740993\t123456789012345678901234567890.123456789\t\\N\t\\N\t\\N\n',
    );
  });

  it('unescapes strings (unicode escapes, surrogate pairs) and escapes for COPY', () => {
    const b = new RowBuilder(cols, false);
    assert.equal(b.row('{"name": "a\\tb\\nc\\\\d \\u00e9 \\ud83d\\ude00 日本"}'), '\\N\t\\N\ta\\tb\\nc\\\\d é 😀 日本\t\\N\t\\N\n');
  });

  it('sends nested values as JSON text, and every value to a json column as JSON', () => {
    const b = new RowBuilder(cols, false);
    assert.equal(b.row('{"doc": "text", "tags": ["x", {"y": null}]}'), '\\N\t\\N\t\\N\t"text"\t["x", {"y": null}]\n');
    assert.equal(b.row('{"doc": {"k": "a\\\\b\\tc"}}'), '\\N\t\\N\t\\N\t{"k": "a\\\\\\\\b\\\\tc"}\t\\N\n');
    assert.equal(b.row('{"id": null, "name": "", "doc": null}'), '\\N\t\\N\t\t\\N\t\\N\n');
  });

  it('follows keys whatever their order, written with escapes or not', () => {
    const b = new RowBuilder(cols, false);
    assert.equal(b.row('{"name": "x", "id": 1}'), '1\t\\N\tx\t\\N\t\\N\n');
    assert.equal(b.row('{"id": 2, "name": "y"}'), '2\t\\N\ty\t\\N\t\\N\n');
    assert.equal(b.row('{"\\u0069d": 3}'), '3\t\\N\t\\N\t\\N\t\\N\n');
  });

  it('rejects unknown keys unless told to skip them', () => {
    assert.throws(() => new RowBuilder(cols, false).row('{"id": 1, "nope": 2}'), (e: unknown) => e instanceof UnknownKeyError && e.key === 'nope');
    assert.equal(new RowBuilder(cols, true).row('{"id": 1, "nope": {"x": [1]}}'), '1\t\\N\t\\N\t\\N\t\\N\n');
  });

  it('rejects malformed records', () => {
    const b = new RowBuilder(cols, true);
    for (const bad of ['{"id": 01}', '{"id": 1,}', '{"id": tru}', '{"id": 1', '{"id": 1} x', '[1]', '{"id": "a\tb"}', '{"id": [1,}]}', '{"id": "\\x"}']) {
      assert.throws(() => b.row(bad), JsonSyntaxError, bad);
    }
    assert.throws(() => b.row('{"name": "dirty", "id": 1,}'), JsonSyntaxError);
    assert.equal(b.row('{"id": 5}'), '5\t\\N\t\\N\t\\N\t\\N\n', 'a failed record leaves nothing behind');
  });

  it('escapes COPY text specials only', () => {
    assert.equal(copyEscape('plain'), 'plain');
    assert.equal(copyEscape('a\\b\tc\nd\re'), 'a\\\\b\\tc\\nd\\re');
  });
});

describe('JSON type inference', () => {
  it('unions keys in first-seen order and picks lossless types', () => {
    const s = new JsonSampler();
    for (const r of [
      '{"id": 1, "n": 1.5, "ok": true, "at": "2024-01-01T00:00:00Z", "d": "2024-01-01", "o": {"a": 1}, "mixed": 1}',
      '{"id": 9223372036854775807, "n": 2, "extra": "x", "o": "str", "mixed": "a", "none": null}',
    ]) {
      assert.ok(scanObject(r, 0, r.length, s) > 0);
    }
    assert.deepEqual(s.types(), [
      { name: 'id', type: 'bigint' },
      { name: 'n', type: 'numeric' },
      { name: 'ok', type: 'boolean' },
      { name: 'at', type: 'timestamptz' },
      { name: 'd', type: 'date' },
      { name: 'o', type: 'jsonb' },
      { name: 'mixed', type: 'text' },
      { name: 'extra', type: 'text' },
      { name: 'none', type: 'text' },
    ]);
  });
});
