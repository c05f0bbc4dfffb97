import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hashint4 } from '../../src/docs/chunk-routes.js';

describe('hashint4 (which Citus shard holds a chunk)', () => {
  it("gives PostgreSQL's own values (SELECT hashint4(k) on PostgreSQL 15)", () => {
    const server: [number, number][] = [
      [0, -272711505],
      [1, -1905060026],
      [2, 1134484726],
      [3, -28094569],
      [5, -1330264708],
      [17, -917053276],
      [100, 108199381],
      [1000, -840720108],
      [65535, 800703781],
      [123456789, 524883300],
      [2147483647, -96758253],
    ];
    assert.deepEqual(
      server.map(([k]) => [k, hashint4(k)]),
      server,
    );
  });
});
