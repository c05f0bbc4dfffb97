/**
 * Several statements in one simple-query message: one round trip, one result each, in order.
 * node-postgres resolves such a query to an array of results (one statement: to a result alone) but
 * types it as one result; this says what comes back. No parameters: a simple query takes none.
 */
import type pg from 'pg';

export async function queryEach(client: pg.Client, sql: string): Promise<pg.QueryResult[]> {
  const results = (await client.query(sql)) as unknown as pg.QueryResult | pg.QueryResult[];
  return Array.isArray(results) ? results : [results];
}
