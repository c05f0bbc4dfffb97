/**
 * The certificates NODE_EXTRA_CA_CERTS names, given back to a connection that verifies against the
 * default store (src/pg/extra-ca.ts): which `ssl` settings get them, and in what form.
 */
import assert from 'node:assert/strict';
import { rootCertificates } from 'node:tls';
import { describe, it } from 'node:test';
import { extraCaOptions } from '../../src/pg/extra-ca.js';

const PEM = '-----BEGIN CERTIFICATE-----\nextra\n-----END CERTIFICATE-----\n';

/** pem null: the file could not be read. */
function run(ssl: unknown, pem: string | null = PEM) {
  let read = 0;
  const contexts: string[][] = [];
  const add = extraCaOptions(
    ssl,
    () => {
      read++;
      return pem ?? undefined;
    },
    (ca) => {
      contexts.push(ca());
      return { context: contexts.length };
    },
  );
  return { add, read, contexts };
}

describe('extra CA certificates for a connection', () => {
  it('no TLS, or TLS unverified, or with a CA of its own: nothing added, the file not read', () => {
    for (const ssl of [undefined, false, { rejectUnauthorized: false }, { ca: 'mine' }, { secureContext: {} }]) {
      const r = run(ssl);
      assert.equal(r.add, undefined, JSON.stringify(ssl));
      assert.equal(r.read, 0, JSON.stringify(ssl));
    }
  });

  it('verified against the default store: one context of Node’s roots and the extra certificates', () => {
    for (const ssl of [true, {}, { rejectUnauthorized: true }, { checkServerIdentity: () => undefined }]) {
      const r = run(ssl);
      assert.deepEqual(r.add, { secureContext: { context: 1 } });
      assert.equal(r.contexts.length, 1);
      const ca = r.contexts[0] as string[];
      assert.equal(ca.length, rootCertificates.length + 1);
      assert.deepEqual(ca.slice(0, -1), [...rootCertificates]);
      assert.equal(ca.at(-1), PEM);
    }
  });

  it('with a client certificate: the list itself (the connection makes its own context)', () => {
    const key = {};
    Object.defineProperty(key, 'key', { value: 'k', enumerable: false });
    for (const ssl of [{ cert: 'c', key: 'k' }, { pfx: 'p' }, key]) {
      const r = run(ssl);
      assert.equal(r.contexts.length, 0);
      assert.deepEqual(r.add, { ca: [...rootCertificates, PEM] });
    }
  });

  it('a file that could not be read: nothing added', () => {
    const r = run(true, null);
    assert.equal(r.add, undefined);
    assert.equal(r.read, 1);
  });
});
