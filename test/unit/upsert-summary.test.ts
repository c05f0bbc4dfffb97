import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { upsertSummary } from '../../src/cli/import.js';

describe('upsertSummary (what an upsert did, after the import summary)', () => {
  it('update: new, updated, and the rows a later row of their key superseded', () => {
    assert.equal(upsertSummary({ rows: 30000, upsert: { onConflict: 'update', inserted: 15000, updated: 5000 } }), '; in the table: 15,000 new, 5,000 updated, 10,000 superseded by a later row of their key');
    assert.equal(upsertSummary({ rows: 3, upsert: { onConflict: 'update', inserted: 0, updated: 3 } }), '; in the table: 0 new, 3 updated');
  });

  it('nothing: new, and the rest left as they were (or superseded); no "updated"', () => {
    assert.equal(upsertSummary({ rows: 10, upsert: { onConflict: 'nothing', inserted: 4, updated: 0 } }), '; in the table: 4 new, 6 left as the table had them or superseded by a later row of their key');
    assert.equal(upsertSummary({ rows: 4, upsert: { onConflict: 'nothing', inserted: 4, updated: 0 } }), '; in the table: 4 new');
  });

  it('a resumable import counts the rows of its earlier runs too; no upsert, nothing said', () => {
    assert.equal(upsertSummary({ rows: 100, earlierRows: 900, upsert: { onConflict: 'update', inserted: 600, updated: 400 } }), '; in the table: 600 new, 400 updated');
    assert.equal(upsertSummary({ rows: 100 }), '');
  });
});
