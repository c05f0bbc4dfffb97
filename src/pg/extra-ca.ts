/**
 * NODE_EXTRA_CA_CERTS, read when a connection first needs it instead of as Node starts.
 *
 * Node 20 reads the file NODE_EXTRA_CA_CERTS names, and builds its whole root store with it, before
 * any of dataio's code runs: 30–40 ms of every start-up on a machine that sets it (measured here,
 * `node -e 0`: 0.09 s with it, 0.06 s without), for a store most runs never use (no TLS, or a CA of
 * their own through sslrootcert). So bin/dataio, as a shell line, moves the variable aside before it
 * starts Node, and gives its value back here (`deferredExtraCaCerts`), with the variable itself
 * restored for any process dataio starts.
 *
 * A connection that verifies the server against the default store (TLS on, no sslrootcert, not
 * `rejectUnauthorized: false`) then gets what Node would have used: its bundled roots and the
 * file's certificates, in one secure context made once per process. A connection with a CA of its
 * own is left alone (Node ignores the extra certificates there too). A file that cannot be read is
 * ignored with one warning, as Node does. Run any other way (`node bin/dataio`, as a library), Node
 * has read the file itself and nothing here applies.
 */
import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { lazyBuiltin } from '../lazy-builtin.js';

const tls = lazyBuiltin<typeof import('node:tls')>('node:tls');

const DEFERRED = Symbol.for('dataio.extraCaCerts');

/** The file bin/dataio kept from Node's start, if it did. */
export function deferredExtraCaCerts(): string | undefined {
  const v = (globalThis as Record<symbol, unknown>)[DEFERRED];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

interface TlsOptions {
  ca?: unknown;
  key?: unknown;
  cert?: unknown;
  pfx?: unknown;
  rejectUnauthorized?: boolean;
  secureContext?: unknown;
}

/**
 * What a connection's `ssl` setting (node-postgres: false, true or tls.connect options) needs added
 * for the extra certificates, given their PEM text: undefined when nothing.
 */
export function extraCaOptions(ssl: unknown, extraPem: () => string | undefined, context: (ca: () => string[]) => unknown): Pick<TlsOptions, 'ca' | 'secureContext'> | undefined {
  if (ssl !== true && (typeof ssl !== 'object' || ssl === null)) return undefined;
  const o: TlsOptions = ssl === true ? {} : (ssl as TlsOptions);
  if (o.ca !== undefined || o.secureContext !== undefined || o.rejectUnauthorized === false) return undefined;
  const pem = extraPem();
  if (pem === undefined) return undefined;
  // The list only when it is used: a context made before has it already.
  const ca = () => [...tls().rootCertificates, pem];
  // A secure context holds the certificates parsed once; with a client certificate of its own the
  // connection needs a context of its own too, so it gets the list.
  return o.key !== undefined || o.cert !== undefined || o.pfx !== undefined ? { ca: ca() } : { secureContext: context(ca) };
}

let pemRead: { pem: string | undefined } | undefined;
let sharedContext: unknown;

function extraPemOnce(file: string): string | undefined {
  if (pemRead === undefined) {
    try {
      pemRead = { pem: readFileSync(file, 'utf8') };
    } catch (err) {
      // Node's own words for the same case, once.
      process.stderr.write(`Warning: Ignoring extra certs from \`${file}\`, load failed: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`);
      pemRead = { pem: undefined };
    }
  }
  return pemRead.pem;
}

/** Give a client, before it connects, the extra certificates bin/dataio kept from Node's start. */
export function applyDeferredExtraCa(client: pg.Client): void {
  const file = deferredExtraCaCerts();
  if (file === undefined) return;
  // node-postgres hands `connection.ssl` to tls.connect (after the connection string's settings
  // were applied, which is why this runs on the client and not on its config).
  const connection = (client as unknown as { connection: { ssl: unknown } }).connection;
  const add = extraCaOptions(
    connection.ssl,
    () => extraPemOnce(file),
    (ca) => (sharedContext ??= tls().createSecureContext({ ca: ca() })),
  );
  if (add === undefined) return;
  // Into the same object: node-postgres made its private key non-enumerable, which a copy would lose.
  if (connection.ssl === true) connection.ssl = add;
  else Object.assign(connection.ssl as object, add);
}
