import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fitsBigint, fitsNumeric, inferType, inferTypes, timestampKind } from '../../src/import/plan/infer.js';

describe('type inference', () => {
  it('chooses bigint only for integers that come back as written', () => {
    for (const v of ['0', '7', '-12', '9223372036854775807', '-9223372036854775808']) assert.ok(fitsBigint(v), v);
    for (const v of ['00501', '+5', ' 7', '7 ', '1_000', '1e3', '-0', '9223372036854775808', '', '0x10']) assert.ok(!fitsBigint(v), v);
  });

  it('chooses numeric for decimals as written, never for forms PostgreSQL would rewrite', () => {
    for (const v of ['1.5', '-0.25', '1.50', '123456789012345678901234567890.123']) assert.ok(fitsNumeric(v), v);
    for (const v of ['.5', '1.', '1e5', '-0.0', '01.5', 'NaN', '1,5']) assert.ok(!fitsNumeric(v), v);
  });

  it('tells timestamps with and without a zone apart, and rejects impossible ones', () => {
    assert.equal(timestampKind('2024-01-01T00:00:00Z'), 'timestamptz');
    assert.equal(timestampKind('2024-01-01 10:00:00.123456+02:00'), 'timestamptz');
    assert.equal(timestampKind('2024-01-01T10:00:00'), 'timestamp');
    assert.equal(timestampKind('2024-02-30T10:00:00Z'), undefined);
    assert.equal(timestampKind('2023-02-29T10:00:00Z'), undefined);
    assert.equal(timestampKind('2024-02-29T10:00:00Z'), 'timestamptz');
    assert.equal(timestampKind('2024-01-01T24:00:00Z'), undefined);
  });

  it('infers column types over a sample, NULLs not deciding', () => {
    assert.equal(inferType(['1', null, '2']), 'bigint');
    assert.equal(inferType(['1', '2.5']), 'numeric');
    assert.equal(inferType(['1', 'N/A']), 'text');
    assert.equal(inferType(['true', 'FALSE', null]), 'boolean');
    assert.equal(inferType(['t', 'f']), 'text');
    assert.equal(inferType(['2024-01-01', '2024-12-31']), 'date');
    assert.equal(inferType(['2024-01-01', '2024-12-31T00:00:00Z']), 'text');
    assert.equal(inferType(['{"a":1}', '[1,2]']), 'jsonb');
    assert.equal(inferType(['{"a":1', '[1,2]']), 'text');
    assert.equal(inferType([null, null]), 'text');
    assert.equal(inferType(['']), 'text', 'a quoted empty string is a value, and only text holds it');
    assert.deepEqual(inferTypes(3, [['1', 'x'], ['2', 'y', '3.5']]), ['bigint', 'text', 'numeric']);
  });
});
