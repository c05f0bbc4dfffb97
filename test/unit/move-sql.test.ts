import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { moveSql } from '../../src/import/commit/move.js';

describe('moveSql', () => {
  const base = { target: 'public."t"', staging: 'dataio."stage_1"', columns: ['id', 'name', 'v'] };

  it('moves the input columns as they are without an upsert', () => {
    assert.equal(moveSql({ ...base, onConflict: 'error' }), 'INSERT INTO public."t" ("id", "name", "v") SELECT "id", "name", "v" FROM dataio."stage_1" s');
  });

  it('update: the last row of a key in input order, sorted by the key, overwriting the other columns', () => {
    assert.equal(
      moveSql({ ...base, onConflict: 'update', key: ['id'] }),
      'INSERT INTO public."t" ("id", "name", "v") SELECT DISTINCT ON ("id") "id", "name", "v" FROM dataio."stage_1" s ORDER BY "id", dataio_batch DESC, dataio_row DESC ' +
        'ON CONFLICT ("id") DO UPDATE SET "name" = excluded."name", "v" = excluded."v"',
    );
  });

  it('nothing keeps the table\'s rows; a key of every column has nothing to update', () => {
    assert.match(moveSql({ ...base, onConflict: 'nothing', key: ['id', 'name'] }), /DISTINCT ON \("id", "name"\) .* ON CONFLICT \("id", "name"\) DO NOTHING$/);
    assert.match(moveSql({ ...base, onConflict: 'update', key: ['id', 'name', 'v'] }), /ON CONFLICT \("id", "name", "v"\) DO NOTHING$/);
  });

  it('a part of the move: only the rows the condition selects, and of a key only the input\'s last row', () => {
    assert.equal(moveSql({ ...base, onConflict: 'error', where: 'dataio_batch = 3' }), 'INSERT INTO public."t" ("id", "name", "v") SELECT "id", "name", "v" FROM dataio."stage_1" s WHERE dataio_batch = 3');
    assert.match(
      moveSql({ ...base, onConflict: 'nothing', key: ['id'], where: 'dataio_batch = 3' }),
      /FROM dataio."stage_1" s WHERE dataio_batch = 3 AND NOT EXISTS \(SELECT 1 FROM dataio."stage_1" l WHERE l."id" = s."id" AND \(l.dataio_batch, l.dataio_row\) > \(s.dataio_batch, s.dataio_row\)\) ORDER BY/,
    );
  });

  it('quotes names', () => {
    assert.match(moveSql({ ...base, columns: ['a"b', 'select'], onConflict: 'update', key: ['a"b'] }), /DO UPDATE SET "select" = excluded."select"$/);
  });

  it('an upsert without a key is a programming error', () => {
    assert.throws(() => moveSql({ ...base, onConflict: 'update' }), /needs a key/);
  });
});
