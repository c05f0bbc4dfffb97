import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isTransientSqlstate, withRetry } from '../../src/pg/retry.js';

describe('transient failures', () => {
  it('are told apart by SQLSTATE', () => {
    for (const c of ['57P03', '57P01', '53300', '53100', '40001', '40P01', '08006']) assert.ok(isTransientSqlstate(c), c);
    for (const c of ['22P02', '23505', '42P01', '28P01', '57014', undefined]) assert.ok(!isTransientSqlstate(c), String(c));
  });

  it('are retried until success, a lasting error passes through at once, the tries run out', async () => {
    let n = 0;
    const flaky = async () => {
      n++;
      if (n < 3) throw Object.assign(new Error('starting up'), { transient: true });
      return 'ok';
    };
    const transient = (e: unknown) => (e as { transient?: boolean }).transient === true;
    const heard: [number, number][] = [];
    assert.equal(await withRetry(flaky, transient, [1, 2, 3], (_e, delay, retry) => heard.push([delay, retry])), 'ok');
    assert.equal(n, 3);
    assert.deepEqual(heard, [
      [1, 1],
      [2, 2],
    ], 'told of each retry, with its pause');
    let m = 0;
    await assert.rejects(
      withRetry(async () => {
        m++;
        throw new Error('bad password');
      }, transient, [1, 1, 1]),
      /bad password/,
    );
    assert.equal(m, 1, 'no retry for a lasting error');
    let k = 0;
    await assert.rejects(
      withRetry(async () => {
        k++;
        throw Object.assign(new Error('still starting'), { transient: true });
      }, transient, [1, 1]),
      /still starting/,
    );
    assert.equal(k, 3, 'one try plus one per delay');
  });
});
