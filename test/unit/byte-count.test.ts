import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { countByte, simdAvailable, simdTried, WARM_UP } from '../../src/import/cut/byte-count.js';
import { rng } from '../support/csvgen.js';

function reference(buf: Buffer, byte: number, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) if (buf[i] === byte) n++;
  return n;
}

function randomBuffer(r: () => number, length: number, alphabet: number[]): Buffer {
  const buf = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) buf[i] = alphabet[Math.floor(r() * alphabet.length)] as number;
  return buf;
}

describe('countByte', () => {
  // First in this file: the module is made only after WARM_UP bytes (a small import never pays for it).
  it('counts a process\'s first bytes with the indexOf loop, then makes the module', () => {
    const r = rng(5);
    const buf = randomBuffer(r, 1024 * 1024, [0x0a, 0x41, 0x22]);
    let seen = 0;
    while (seen + buf.length <= WARM_UP) {
      assert.equal(countByte(buf, 0x0a), reference(buf, 0x0a, 0, buf.length));
      seen += buf.length;
      assert.equal(simdTried(), false, `after ${seen} bytes`);
    }
    assert.equal(countByte(buf, 0x22), reference(buf, 0x22, 0, buf.length));
    assert.equal(simdTried(), true);
  });

  it('uses WebAssembly SIMD on this Node (else these tests would only check the fallback)', () => {
    assert.equal(simdAvailable(), true);
  });

  it('counts like a byte loop, at every length, offset and alignment', () => {
    const r = rng(99);
    // Newlines, quotes, NUL and high bytes (a signed/unsigned mix-up would show on 0xff and 0x80).
    const alphabet = [0x0a, 0x22, 0x00, 0xff, 0x80, 0x61, 0x2c, 0x0d];
    for (const length of [0, 1, 15, 16, 17, 4095, 4096, 4097, 65_536 + 3, 1024 * 1024 - 1, 1024 * 1024, 1024 * 1024 + 1, 2_500_017]) {
      const buf = randomBuffer(r, length, alphabet);
      for (const byte of [0x0a, 0x22, 0x00, 0xff, 0x80, 0x7f]) {
        assert.equal(countByte(buf, byte), reference(buf, byte, 0, length), `length ${length}, byte ${byte}`);
      }
      for (let k = 0; k < 6 && length > 0; k++) {
        const from = Math.floor(r() * length);
        const to = from + Math.floor(r() * (length - from + 1));
        assert.equal(countByte(buf, 0x22, from, to), reference(buf, 0x22, from, to), `length ${length}, [${from}, ${to})`);
      }
    }
  });

  it('counts in a view that starts at any offset of its memory', () => {
    const r = rng(7);
    const base = randomBuffer(r, 3 * 1024 * 1024, [0x0a, 0x41, 0x22]);
    for (const off of [0, 1, 3, 7, 8, 13, 4096 + 5]) {
      const view = base.subarray(off, off + 1024 * 1024 + 37);
      assert.equal(countByte(view, 0x0a), reference(view, 0x0a, 0, view.length));
    }
  });

  it('compiles the module in the background when a large input is coming, counting with the loop meanwhile', () => {
    // A fresh process: this one made its module above.
    const url = new URL('../../src/import/cut/byte-count.js', import.meta.url).href;
    const out = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { countByte, prepareSimd, simdTried } from ${JSON.stringify(url)};
         const buf = Buffer.from('a\\nb"c\\n'.repeat(100000));
         prepareSimd();
         const before = [simdTried(), countByte(buf, 10)];
         const t = Date.now();
         while (!simdTried() && Date.now() - t < 5000) await new Promise((r) => setTimeout(r, 1));
         console.log(JSON.stringify([...before, simdTried(), countByte(buf, 10), countByte(buf, 0x22)]));`,
      ],
      { encoding: 'utf8' },
    );
    // Not made at once (compiled on other threads), made soon, counting the same; the process counted
    // far less than WARM_UP, so only prepareSimd can have made it.
    assert.deepEqual(JSON.parse(out), [false, 200000, true, 200000, 100000]);
  });
});
