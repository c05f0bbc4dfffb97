import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openInput } from '../../src/io/input.js';
import { SlabPool } from '../../src/io/slab-pool.js';
import { Batcher, type Batch } from '../../src/import/cut/batcher.js';
import { csvDialect, makeScanner } from '../../src/import/cut/scanner.js';
import { generateCsv, rng } from '../support/csvgen.js';
import { scratch } from '../support/files.js';

const { file: writeInput } = scratch('slab');

describe('SlabPool', () => {
  it('reuses a slab only after every retained slice of it is released', () => {
    const pool = new SlabPool(16);
    const a = pool.take();
    pool.retain(a.subarray(0, 4));
    pool.retain(a.subarray(4, 16));
    pool.release(a.subarray(0, 4));
    assert.notEqual(pool.take().buffer, a.buffer, 'one slice is still held');
    pool.release(a.subarray(4, 16));
    assert.equal(pool.take().buffer, a.buffer, 'all slices released');
  });

  it('ignores memory it did not hand out, and slabs never retained', () => {
    const pool = new SlabPool(16);
    const other = Buffer.alloc(16);
    pool.retain(other);
    pool.release(other);
    pool.release(other);
    const a = pool.take();
    pool.release(a);
    assert.notEqual(pool.take().buffer, a.buffer, 'a release without a retain does not free the slab');
  });
});

describe('Batcher with pooled chunks', () => {
  it('never hands out a slab while a batch cut from it is unreleased (random release order)', () => {
    const { text } = generateCsv(4242, { rows: 3000, cols: 4, eol: '\n', finalNewline: true, bom: false, newlinesInQuotes: true });
    const input = Buffer.from(text);
    for (const [slabSize, batchSize] of [[64, 100], [1000, 300], [4096, 5000], [7, 1]] as const) {
      const pool = new SlabPool(slabSize);
      const r = rng(slabSize * 31 + batchSize);
      const batcher = new Batcher({ batchSize, scanner: makeScanner(csvDialect(), 'lf'), eol: 'lf', startOffset: 0, startLine: 1, pool });
      const held: Batch[] = [];
      const done: Batch[] = [];
      const slabs = new Set<ArrayBufferLike>();
      const verifyAndRelease = (b: Batch) => {
        // Were any of its slabs reused too early, these bytes would have been overwritten.
        assert.equal(Buffer.concat(b.chunks).toString('hex'), input.subarray(b.offset, b.offset + b.bytes).toString('hex'));
        b.release?.();
        b.release?.(); // a second call does nothing
        done.push(b);
      };
      for (let pos = 0; pos < input.length; ) {
        // Read like pooledFile: into a slab, handing out the filled part.
        const slab = pool.take();
        slabs.add(slab.buffer);
        const n = input.copy(slab, 0, pos, pos + slabSize);
        pos += n;
        for (const b of batcher.push(n === slab.length ? slab : slab.subarray(0, n))) held.push(b);
        // Release a random few of the held batches, in any order.
        while (held.length > 0 && r() < 0.6) verifyAndRelease(held.splice(Math.floor(r() * held.length), 1)[0] as Batch);
      }
      const last = batcher.end();
      if (last) held.push(last);
      while (held.length > 0) verifyAndRelease(held.splice(Math.floor(r() * held.length), 1)[0] as Batch);
      done.sort((x, y) => x.index - y.index);
      assert.equal(done.reduce((n, b) => n + b.bytes, 0), input.length);
      assert.ok(slabs.size < Math.ceil(input.length / slabSize), `slabs were reused (${slabs.size} for ${Math.ceil(input.length / slabSize)} reads)`);
    }
  });
});

describe('openInput with a pool', () => {
  it('reads a regular file into pooled slabs, byte for byte', async () => {
    const content = Buffer.alloc(3 * 4096 + 123);
    for (let i = 0; i < content.length; i++) content[i] = (i * 7) & 0xff;
    const path = writeInput('pooled.bin', content);
    const pool = new SlabPool(4096);
    const input = await openInput(path, undefined, { pool });
    const got: Buffer[] = [];
    for await (const c of input.chunks) {
      assert.ok(c.length <= 4096);
      got.push(Buffer.from(c)); // copies: the slabs are never released here
    }
    assert.deepEqual(Buffer.concat(got), content);
    assert.equal(input.rawBytesRead(), content.length);
  });

  it('reads an empty file as no chunks', async () => {
    const input = await openInput(writeInput('empty.csv', ''), undefined, { pool: new SlabPool(4096) });
    const got: Buffer[] = [];
    for await (const c of input.chunks) got.push(c);
    assert.equal(got.length, 0);
  });
});
