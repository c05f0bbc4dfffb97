import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { IntegrityChecker, type FetchedChunk } from '../../src/docs/get.js';
import type { DocumentInfo } from '../../src/docs/store.js';
import { DataioError } from '../../src/errors.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest();

function stored(data: Buffer, chunkSize: number): { doc: DocumentInfo; chunks: FetchedChunk[] } {
  const chunks: FetchedChunk[] = [];
  for (let i = 0; i * chunkSize < data.length; i++) {
    const part = data.subarray(i * chunkSize, (i + 1) * chunkSize);
    chunks.push({ seq: i, sha256: sha(part), data: part });
  }
  const doc: DocumentInfo = {
    id: '00000000-0000-4000-8000-000000000000',
    name: 'd',
    contentType: null,
    size: data.length,
    chunkSize,
    chunkCount: chunks.length,
    sha256: sha(data),
    chunksSha256: sha(Buffer.concat(chunks.map((c) => c.sha256))),
    state: 'complete',
    createdAt: new Date(0),
    completedAt: new Date(0),
  };
  return { doc, chunks };
}

function check(doc: DocumentInfo, chunks: FetchedChunk[]): void {
  const c = new IntegrityChecker(doc, 'out.bin');
  for (const chunk of chunks) c.chunk(chunk);
  c.finish();
}

const isIntegrity = (pattern: RegExp) => (e: unknown) => e instanceof DataioError && e.code === 'INTEGRITY' && pattern.test(e.message) && /out\.bin was not written/.test(e.hint ?? '');

describe('integrity checks of a fetched document', () => {
  const data = randomBytes(10_000);

  it('passes an intact document, and an empty one', () => {
    const s = stored(data, 3000);
    check(s.doc, s.chunks);
    const e = stored(Buffer.alloc(0), 3000);
    check(e.doc, e.chunks);
  });

  it('fails on a flipped byte in a chunk', () => {
    const s = stored(data, 3000);
    const bad = Buffer.from(s.chunks[1]!.data);
    bad[5] = (bad[5] ?? 0) ^ 1;
    s.chunks[1] = { ...s.chunks[1]!, data: bad };
    assert.throws(() => check(s.doc, s.chunks), isIntegrity(/chunk 1 \(bytes 3000–5999\) does not match its SHA-256/));
  });

  it('fails on a missing chunk, in the middle or at the end', () => {
    const s = stored(data, 3000);
    assert.throws(() => check(s.doc, [s.chunks[0]!, s.chunks[2]!, s.chunks[3]!]), isIntegrity(/chunk 1 is missing/));
    assert.throws(() => check(s.doc, s.chunks.slice(0, 3)), isIntegrity(/chunk 3 is missing/));
  });

  it('fails on a chunk of the wrong length even when its own hash fits', () => {
    const s = stored(data, 3000);
    const short = s.chunks[0]!.data.subarray(0, 10);
    s.chunks[0] = { seq: 0, data: short, sha256: sha(short) };
    assert.throws(() => check(s.doc, s.chunks), isIntegrity(/chunk 0 holds 10 bytes where 3000 belong/));
  });

  it('fails when chunks and their hashes were swapped consistently', () => {
    const s = stored(Buffer.concat([Buffer.alloc(3000, 1), Buffer.alloc(3000, 2), Buffer.alloc(10, 3)]), 3000);
    const [a, b, c] = s.chunks as [FetchedChunk, FetchedChunk, FetchedChunk];
    assert.throws(() => check(s.doc, [{ ...b, seq: 0 }, { ...a, seq: 1 }, c]), isIntegrity(/list of chunk hashes/));
  });

  it('fails when the whole-document hash does not match', () => {
    const s = stored(data, 3000);
    s.doc.sha256 = sha(Buffer.from('something else'));
    assert.throws(() => check(s.doc, s.chunks), isIntegrity(/SHA-256 of the whole document/));
  });
});
