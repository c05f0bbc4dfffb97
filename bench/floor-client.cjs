// The floor for a small import from Node: a minimal client (pg and pg-copy-streams, nothing else;
// bundled by bench/merge.mjs as dataio is) that copies one CSV file with a header into a table in one
// transaction. Usage: node floor-client.bundle.cjs URL FILE TABLE. Like bin/dataio it gives Node 20
// a `navigator`, so that pg does not load undici to ask whether it runs in a Cloudflare Worker.
if (globalThis.navigator === undefined) {
  Object.defineProperty(globalThis, 'navigator', { value: { userAgent: 'Node.js/20' }, configurable: true, writable: true });
}
const { createReadStream } = require('node:fs');
const { pipeline } = require('node:stream/promises');
const pg = require('pg');
const { from } = require('pg-copy-streams');

(async () => {
  const [url, file, table] = process.argv.slice(2);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query('BEGIN');
  await pipeline(createReadStream(file), client.query(from(`COPY ${table} FROM STDIN (FORMAT csv, HEADER)`)));
  await client.query('COMMIT');
  await client.end();
})().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
