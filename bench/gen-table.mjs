// Creates the benchmark table of DESIGN.md inside the server (generate_series: no file, no client
// work): `id bigint, name text, category text, value double precision, created_at timestamptz,
// description text`, about 78 bytes a CSV row, every 7th description quoted with a comma and
// doubled quotes. Deterministic, so runs compare.
// Usage: node bench/gen-table.mjs <url> [rows] [table]
import pg from 'pg';

export async function generateBenchTable(url, rows, table = 'bench_export') {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP TABLE IF EXISTS ${table}`);
    await client.query(
      `CREATE TABLE ${table} (id bigint, name text, category text, value double precision, created_at timestamptz, description text)`,
    );
    await client.query(
      `INSERT INTO ${table}
       SELECT i,
              'name_' || i,
              (ARRAY['alpha','beta','gamma','delta'])[1 + i % 4],
              ((i * 2654435761) % 10000000) / 10000.0,
              timestamptz '2024-01-01 00:00:00+00' + (i % 5000000) * interval '1 minute' + interval '1 second' * (i % 60),
              CASE WHEN i % 7 = 0 THEN 'has, comma and "quote" ' || i ELSE 'plain text ' || i END
         FROM generate_series(1, $1::bigint) AS i`,
      [rows],
    );
    await client.query(`VACUUM ANALYZE ${table}`);
  } finally {
    await client.end();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [url, rows = '2000000', table = 'bench_export'] = process.argv.slice(2);
  if (!url) {
    console.error('usage: node bench/gen-table.mjs <url> [rows] [table]');
    process.exit(2);
  }
  await generateBenchTable(url, Number(rows), table);
}
