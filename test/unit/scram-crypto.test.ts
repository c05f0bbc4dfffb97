import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import * as ours from '../../src/pg/scram-crypto.js';

// node-postgres's own implementation (WebCrypto), which the bundle replaces with ours.
const pgCrypto = createRequire(import.meta.url)('pg/lib/crypto/utils.js') as {
  md5(s: string | Buffer): Promise<string>;
  postgresMd5PasswordHash(user: string, password: string, salt: Buffer): Promise<string>;
  sha256(b: Uint8Array | ArrayBuffer): Promise<ArrayBuffer>;
  hashByName(name: string, b: Uint8Array): Promise<ArrayBuffer>;
  hmacSha256(key: Uint8Array | ArrayBuffer, msg: string): Promise<ArrayBuffer>;
  deriveKey(password: string, salt: Uint8Array, iterations: number): Promise<ArrayBuffer>;
  randomBytes(n: number): Buffer;
};

const hex = (b: ArrayBuffer | Uint8Array) => Buffer.from(b instanceof ArrayBuffer ? new Uint8Array(b) : b).toString('hex');

describe('SCRAM crypto (node:crypto in place of pg\'s WebCrypto)', () => {
  it('derives the same keys, signatures and digests as pg\'s own, byte for byte', async () => {
    for (const [password, salt, iterations] of [
      ['secret', Buffer.from('mx8guLhOyPfnjHzQtJO4lQ==', 'base64'), 4096],
      ['pässwörd ✓', Buffer.from([0, 1, 2, 255]), 1],
      ['', Buffer.alloc(16, 7), 10],
    ] as const) {
      const salted = await pgCrypto.deriveKey(password, salt, iterations);
      assert.equal(hex(await ours.deriveKey(password, salt, iterations)), hex(salted));
      // Keys come as pg's ArrayBuffers and as our Buffers: both kinds are taken.
      assert.equal(hex(await ours.hmacSha256(salted, 'Client Key')), hex(await pgCrypto.hmacSha256(salted, 'Client Key')));
      const clientKey = await ours.hmacSha256(salted, 'Client Key');
      assert.equal(hex(await ours.sha256(clientKey)), hex(await pgCrypto.sha256(clientKey)));
      assert.equal(hex(await ours.sha256(new Uint8Array(clientKey).buffer)), hex(await pgCrypto.sha256(clientKey)));
    }
  });

  it('derives a key once per password, salt and iterations, and hands out copies of it', async () => {
    const salt = Buffer.from('c2FsdHNhbHRzYWx0c2FsdA==', 'base64');
    const first = await ours.deriveKey('pw-derive-once', salt, 4096);
    const expected = hex(first);
    first.fill(0); // a caller that scribbles on its key does not spoil the next connection's
    assert.equal(hex(await ours.deriveKey('pw-derive-once', salt, 4096)), expected);
    assert.equal(hex(await ours.deriveKey('pw-derive-once', new Uint8Array(salt), 4096)), expected);
    // Any of the three differing gives another key.
    assert.notEqual(hex(await ours.deriveKey('pw-derive-once', salt, 4095)), expected);
    assert.notEqual(hex(await ours.deriveKey('pw-derive-twice', salt, 4096)), expected);
    assert.notEqual(hex(await ours.deriveKey('pw-derive-once', Buffer.concat([salt, Buffer.from([0])]), 4096)), expected);
    assert.equal(hex(await ours.deriveKey('pw-derive-once', salt, 4095)), hex(await pgCrypto.deriveKey('pw-derive-once', salt, 4095)));
  });

  it('hashes a certificate by its signature\'s hash name, as channel binding asks', async () => {
    const der = Buffer.from('3082010a0282010100c0ffee', 'hex');
    for (const name of ['SHA-1', 'SHA-256', 'SHA-384', 'SHA-512']) {
      assert.equal(hex(await ours.hashByName(name, der)), hex(await pgCrypto.hashByName(name, der)), name);
    }
    assert.equal(ours.nodeHashName('SHA512-256'), 'sha512-256');
  });

  it('answers MD5 password authentication as pg does', async () => {
    const salt = Buffer.from([1, 2, 3, 4]);
    assert.equal(await ours.postgresMd5PasswordHash('alice', 'pw', salt), await pgCrypto.postgresMd5PasswordHash('alice', 'pw', salt));
    assert.equal(await ours.md5('x'), await pgCrypto.md5('x'));
  });

  it('gives random nonces of the asked length', () => {
    const a = ours.randomBytes(18);
    assert.equal(a.length, 18);
    assert.notEqual(a.toString('hex'), ours.randomBytes(18).toString('hex'));
  });
});
