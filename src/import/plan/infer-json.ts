/**
 * --create for JSON: the union of the sampled records' keys in first-seen order, and for each a type
 * every sampled value fits without losing meaning. Integers → bigint (within 64 bits), other numbers →
 * numeric (exact), booleans, ISO date/timestamp strings → date/timestamp(tz), other strings → text,
 * objects/arrays → jsonb (and a key that holds objects and other values, jsonb too: JSON keeps them all).
 * Mixed scalars → text.
 */
import { decodeString, Kind, type FieldSink } from '../cut/json/scan.js';
import { fitsBigint, fitsDate, timestampKind, type InferredType } from './infer.js';

function valueType(kind: Kind, raw: string): InferredType | undefined {
  switch (kind) {
    case Kind.Null:
      return undefined;
    case Kind.Number:
      return fitsBigint(raw) ? 'bigint' : 'numeric';
    case Kind.True:
    case Kind.False:
      return 'boolean';
    case Kind.Object:
    case Kind.Array:
      return 'jsonb';
    case Kind.String: {
      const v = decodeString(raw);
      if (fitsDate(v)) return 'date';
      return timestampKind(v) ?? 'text';
    }
  }
}

export class JsonSampler implements FieldSink {
  readonly keys: string[] = [];
  private readonly seen = new Map<string, Set<InferredType>>();

  field(s: string, keyStart: number, keyEnd: number, kind: Kind, valueStart: number, valueEnd: number): void {
    const key = decodeString(s.slice(keyStart, keyEnd));
    const raw = s.slice(valueStart, valueEnd);
    let types = this.seen.get(key);
    if (types === undefined) {
      types = new Set();
      this.seen.set(key, types);
      this.keys.push(key);
    }
    const t = valueType(kind, raw);
    if (t !== undefined) types.add(t);
  }

  types(): { name: string; type: InferredType }[] {
    return this.keys.map((name) => ({ name, type: combine(this.seen.get(name) ?? new Set()) }));
  }
}

export function combine(types: ReadonlySet<InferredType>): InferredType {
  if (types.size === 0) return 'text';
  if (types.has('jsonb')) return 'jsonb';
  if (types.size === 1) return [...types][0] as InferredType;
  if ([...types].every((t) => t === 'bigint' || t === 'numeric')) return 'numeric';
  return 'text';
}
