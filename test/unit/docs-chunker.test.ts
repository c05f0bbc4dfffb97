import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Chunker } from '../../src/docs/chunker.js';

function cut(input: Buffer, size: number, piece: number): Buffer[] {
  const c = new Chunker(size);
  const out: Buffer[] = [];
  for (let i = 0; i < input.length; i += piece) out.push(...c.push(input.subarray(i, i + piece)));
  const last = c.end();
  if (last !== undefined) out.push(last);
  return out;
}

describe('chunker', () => {
  const size = 1000;
  for (const length of [0, 1, 999, 1000, 1001, 3000, 3005]) {
    for (const piece of [1, 7, 999, 1000, 1001, 4096]) {
      it(`cuts ${length} bytes fed in ${piece}-byte pieces at every multiple of ${size}`, () => {
        const input = randomBytes(length);
        const chunks = cut(input, size, piece);
        assert.equal(chunks.length, Math.ceil(length / size));
        chunks.forEach((c, i) => assert.deepEqual(c, input.subarray(i * size, Math.min(length, (i + 1) * size)), `chunk ${i}`));
      });
    }
  }

  it('does not change a chunk it handed out when later pieces arrive', () => {
    const input = randomBytes(2500);
    const c = new Chunker(1000);
    const got: Buffer[] = [];
    const scratch = Buffer.alloc(7);
    for (let i = 0; i < input.length; i += 7) {
      const n = input.copy(scratch, 0, i, i + 7);
      got.push(...c.push(scratch.subarray(0, n)));
    }
    const last = c.end();
    if (last) got.push(last);
    assert.deepEqual(Buffer.concat(got), input);
  });

  it('hands out an aligned whole chunk as a view of the piece, without copying', () => {
    const piece = randomBytes(2000);
    const [a, b] = new Chunker(1000).push(piece);
    assert.equal(a?.buffer, piece.buffer);
    assert.equal(b?.byteOffset, piece.byteOffset + 1000);
  });

  it('refuses a chunk size that is not a positive integer', () => {
    assert.throws(() => new Chunker(0), RangeError);
    assert.throws(() => new Chunker(1.5), RangeError);
  });
});
