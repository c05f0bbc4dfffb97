import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findSiblingWaits } from '../../src/import/load/sibling-wait.js';

describe('findSiblingWaits', () => {
  it('reports only waits of one of our backends on another of ours', () => {
    const ours = [10, 11, 12, 13, 14];
    assert.deepEqual(
      findSiblingWaits(ours, [
        { pid: 10, blockers: [99] }, // an outside session: a legitimate wait
        { pid: 11, blockers: [99, 12] },
        { pid: 13, blockers: [13] },
        { pid: 50, blockers: [14] }, // not ours
      ]),
      [{ waiter: 11, blocker: 12 }],
    );
    assert.deepEqual(findSiblingWaits(ours, []), []);
  });
});
