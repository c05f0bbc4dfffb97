/**
 * Cutting a table into ranges of heap blocks for a parallel export. Pure.
 *
 * Ranges are small (at most RANGE_BLOCKS, 8 MiB of heap) so that a worker's range is usually done
 * while the one before it is still being written, and memory stays at O(ranges in flight × range);
 * yet at least one range per worker, so a small table still spreads. The last range is open-ended:
 * pages added after the size was read hold only rows the snapshot cannot see, but an open end costs
 * nothing and cannot miss a row.
 */
import type { BlockRange } from './sql.js';

export const RANGE_BLOCKS = 1024;
/** Below this a range is not worth a COPY of its own. */
export const MIN_RANGE_BLOCKS = 16;

export function planRanges(blocks: number, workers: number, maxBlocks = RANGE_BLOCKS): BlockRange[] {
  const size = Math.max(MIN_RANGE_BLOCKS, Math.min(maxBlocks, Math.ceil(blocks / Math.max(1, workers))));
  const count = Math.max(1, Math.ceil(blocks / size));
  const ranges: BlockRange[] = [];
  for (let i = 0; i < count; i++) {
    ranges.push({ from: i === 0 ? undefined : i * size, to: i === count - 1 ? undefined : (i + 1) * size });
  }
  return ranges;
}
