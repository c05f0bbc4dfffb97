import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fetchAhead, TaskWindow } from '../../src/docs/bounded.js';

/** A promise settled from outside, so tests decide the order things finish in (no timers). */
function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('TaskWindow', () => {
  it('never runs more than its limit at once, and add() waits while it is full', async () => {
    const w = new TaskWindow(3);
    const gates = Array.from({ length: 10 }, () => deferred<void>());
    let running = 0;
    let most = 0;
    let added = 0;
    const adding = (async () => {
      for (const g of gates) {
        await w.add(async () => {
          running++;
          most = Math.max(most, running);
          await g.promise;
          running--;
        });
        added++;
      }
    })();
    await tick();
    assert.equal(added, 3, 'the fourth add waits for a free slot');
    // Finish them in a scrambled order.
    for (const i of [2, 0, 1, 5, 3, 4, 9, 6, 8, 7]) {
      gates[i]?.resolve();
      await tick();
    }
    await adding;
    await w.drain();
    assert.equal(most, 3);
    assert.equal(added, 10);
  });

  it('stops taking tasks after a failure and rethrows it', async () => {
    const w = new TaskWindow(2);
    await w.add(async () => {
      throw new Error('boom');
    });
    await tick();
    await assert.rejects(
      w.add(async () => undefined),
      /boom/,
    );
    await assert.rejects(w.drain(), /boom/);
  });
});

describe('fetchAhead', () => {
  it('yields in order whatever order fetches finish in, with at most `ahead` started and unconsumed', async () => {
    const gates = Array.from({ length: 8 }, () => deferred<number>());
    let started = 0;
    const gen = fetchAhead(8, 3, (i) => {
      started++;
      return gates[i]!.promise;
    });
    const got: number[] = [];
    const consuming = (async () => {
      for await (const v of gen) got.push(v);
    })();
    await tick();
    assert.equal(started, 3);
    gates[2]?.resolve(2);
    gates[1]?.resolve(1);
    await tick();
    assert.deepEqual(got, [], 'nothing before fetch 0 is done');
    assert.equal(started, 3, 'finished fetches still count until consumed');
    for (const i of [0, 4, 3, 7, 5, 6]) {
      gates[i]?.resolve(i);
      await tick();
    }
    await consuming;
    assert.deepEqual(got, [0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('throws a failed fetch at its turn, after the values before it', async () => {
    const got: number[] = [];
    const gen = fetchAhead(5, 4, async (i) => {
      if (i === 2) throw new Error('fetch 2 failed');
      return i;
    });
    await assert.rejects(async () => {
      for await (const v of gen) got.push(v);
    }, /fetch 2 failed/);
    assert.deepEqual(got, [0, 1]);
  });

  it('yields nothing for a count of zero', async () => {
    const got: number[] = [];
    for await (const v of fetchAhead(0, 4, async (i) => i)) got.push(v);
    assert.deepEqual(got, []);
  });
});
