import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { BinaryCopyParser, type CopyRow } from '../../src/docs/binary-copy.js';
import { DataioError } from '../../src/errors.js';

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

function int16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

/** What PostgreSQL sends for these rows, per the COPY reference's "Binary Format". */
function encode(rows: CopyRow[], o: { flags?: number; extension?: Buffer } = {}): Buffer {
  const ext = o.extension ?? Buffer.alloc(0);
  const parts = [SIGNATURE, int32(o.flags ?? 0), int32(ext.length), ext];
  for (const row of rows) {
    parts.push(int16(row.length));
    for (const f of row) parts.push(f === null ? int32(-1) : Buffer.concat([int32(f.length), f]));
  }
  parts.push(int16(-1));
  return Buffer.concat(parts);
}

function parseIn(bytes: Buffer, piece: number): CopyRow[] {
  const p = new BinaryCopyParser();
  const rows: CopyRow[] = [];
  for (let i = 0; i < bytes.length; i += piece) rows.push(...p.push(bytes.subarray(i, i + piece)));
  p.end();
  return rows;
}

const big = randomBytes(100_003);
const ROWS: CopyRow[] = [
  [int32(0), randomBytes(32), big],
  [int32(1), null, Buffer.alloc(0)],
  [],
  [Buffer.from('é€ unicode'), Buffer.from([0, 255, 0])],
];

describe('binary COPY parser', () => {
  for (const piece of [1, 7, 4096, Number.MAX_SAFE_INTEGER]) {
    it(`gives back every row byte for byte when fed ${piece === Number.MAX_SAFE_INTEGER ? 'all at once' : `in ${piece}-byte pieces`}`, () => {
      assert.deepEqual(parseIn(encode(ROWS), piece), ROWS);
    });
  }

  it('skips a header extension area', () => {
    assert.deepEqual(parseIn(encode(ROWS, { extension: Buffer.from('xyz') }), 7), ROWS);
  });

  it('parses a stream with no rows', () => {
    assert.deepEqual(parseIn(encode([]), 1), []);
  });

  it('rejects a bad signature', () => {
    const bytes = encode(ROWS);
    bytes[0] = 0x51;
    assert.throws(() => parseIn(bytes, 7), (e: unknown) => e instanceof DataioError && /bad signature/.test(e.message));
  });

  it('rejects rows with OIDs and unknown critical flags', () => {
    assert.throws(() => parseIn(encode(ROWS, { flags: 1 << 16 }), 1), /OIDs/);
    assert.throws(() => parseIn(encode(ROWS, { flags: 1 }), 1), /critical flags/);
  });

  it('accepts unknown non-critical flags', () => {
    assert.deepEqual(parseIn(encode(ROWS, { flags: 1 << 20 }), 7), ROWS);
  });

  it('says the data ends early when the trailer is missing, wherever the cut is', () => {
    const bytes = encode(ROWS);
    for (const cut of [0, 5, 19, 21, 30, bytes.length - 2, bytes.length - 1]) {
      assert.throws(() => parseIn(bytes.subarray(0, cut), 7), /ends before the trailer|no data/, `cut at ${cut}`);
    }
  });

  it('rejects bytes after the trailer', () => {
    assert.throws(() => parseIn(Buffer.concat([encode(ROWS), Buffer.from([0])]), 1), /after the trailer/);
  });

  it('rejects a negative field length other than -1', () => {
    const bytes = Buffer.concat([SIGNATURE, int32(0), int32(0), int16(1), int32(-2), int16(-1)]);
    assert.throws(() => parseIn(bytes, 1), /field length -2/);
  });
});
