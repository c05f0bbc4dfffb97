import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connectionsPerLane, interleaveByGroup, type ShardPlacement } from '../../src/export/citus-shards.js';

const shard = (id: number, group: number): ShardPlacement => ({ shardId: String(id), relation: `public.t_${id}`, group });

describe('Citus shard planning', () => {
  it('interleaves the shards over the node groups, each group in shard order', () => {
    const shards = [shard(1, 1), shard(2, 2), shard(3, 1), shard(4, 1), shard(5, 3), shard(6, 2)];
    assert.deepEqual(
      interleaveByGroup(shards).map((s) => s.shardId),
      ['1', '2', '5', '3', '6', '4'],
    );
    assert.deepEqual(interleaveByGroup([]), []);
  });

  it('spreads the connections over the groups: at least one a group, at most one a shard', () => {
    assert.deepEqual(connectionsPerLane(4, [16, 16]), [2, 2]);
    assert.deepEqual(connectionsPerLane(5, [16, 16]), [3, 2]);
    assert.deepEqual(connectionsPerLane(1, [16, 16, 16]), [1, 1, 1]);
    assert.deepEqual(connectionsPerLane(8, [1, 16]), [1, 4]);
  });
});
