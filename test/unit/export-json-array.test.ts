import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { buffer } from 'node:stream/consumers';
import { JsonArrayFrame, jsonArrayTransform } from '../../src/export/json-array.js';

function frame(chunks: string[]): string {
  const f = new JsonArrayFrame();
  const out: Buffer[] = [];
  for (const c of chunks) out.push(...f.push(Buffer.from(c)));
  out.push(f.end());
  return Buffer.concat(out).toString('utf8');
}

function pieces(s: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < s.length; i += size) out.push(s.slice(i, i + size));
  return out;
}

describe('JsonArrayFrame', () => {
  const elements = ',\n{"a":1},\n{"b":[2,3]},\n{"c":"x,\\n"}';

  for (const size of [1, 7, 1000]) {
    it(`frames elements into one valid array (pieces of ${size})`, () => {
      const s = frame(['', ...pieces(elements, size), '']);
      assert.equal(s, '[\n{"a":1},\n{"b":[2,3]},\n{"c":"x,\\n"}\n]\n');
      assert.deepEqual(JSON.parse(s), [{ a: 1 }, { b: [2, 3] }, { c: 'x,\n' }]);
    });
  }

  it('zero rows give []', () => {
    assert.equal(frame([]), '[]\n');
    assert.equal(frame(['', '']), '[]\n');
    assert.deepEqual(JSON.parse(frame([])), []);
  });

  it('refuses elements that do not start with a comma', () => {
    assert.throws(() => new JsonArrayFrame().push(Buffer.from('{"a":1}')), /comma/);
  });

  it('as a stream transform', async () => {
    const out = await buffer(Readable.from([Buffer.from(',\n1'), Buffer.from(',\n2')]).pipe(jsonArrayTransform()));
    assert.equal(out.toString(), '[\n1,\n2\n]\n');
    const empty = await buffer(Readable.from([]).pipe(jsonArrayTransform()));
    assert.equal(empty.toString(), '[]\n');
  });
});
