/**
 * bin/dataio's first line, for /bin/sh: Node starts without reading NODE_EXTRA_CA_CERTS (it would
 * read the file, and build its root store, before any of dataio's code runs); src/pg/extra-ca.ts reads
 * it when a TLS connection needs it (the TLS tier's test checks that side).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from '../support/env.js';

// A file Node cannot read: Node says so as it starts, when it is the one reading it.
const env = { NODE_EXTRA_CA_CERTS: '/nonexistent/dataio-test-ca.pem' };
const NODE_WARNING = /Ignoring extra certs from/;

describe('bin/dataio start', () => {
  it('run as a program: Node starts without reading NODE_EXTRA_CA_CERTS', async () => {
    const r = await runCli(['--version'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, NODE_WARNING);
  });

  it('run as `node bin/dataio`: Node reads it, as it always does', async () => {
    const r = await runCli(['--version'], { env, viaNode: true });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, NODE_WARNING);
  });

  it('a command that connects without TLS does not read it either', async () => {
    // No server needed: a refused connection still shows whether the file was read (it would warn).
    const r = await runCli(['export', '--db', 'postgresql://nobody@127.0.0.1:1/none', '--query', 'SELECT 1'], { env });
    assert.equal(r.code, 1);
    assert.doesNotMatch(r.stderr, NODE_WARNING);
    assert.match(r.stderr, /127\.0\.0\.1:1/);
  });
});
