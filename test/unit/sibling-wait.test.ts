import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findSiblingWaits } from '../../src/import/sibling-wait.js';

describe('findSiblingWaits', () => {
  it('reports only waits of one of our backends on another of ours', () => {
    assert.deepEqual(
      findSiblingWaits([
        { pid: 10, blockers: [99] }, // an outside session: a legitimate wait
        { pid: 11, blockers: [99, 12] },
        { pid: 12, blockers: [] },
        { pid: 13, blockers: [13] },
      ]),
      [{ waiter: 11, blocker: 12 }],
    );
    assert.deepEqual(findSiblingWaits([]), []);
  });
});
