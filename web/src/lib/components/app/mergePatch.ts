// The config is PATCHed as a JSON Merge Patch (RFC 7386): send only what changed, null removes.

type Json = unknown;

function isObject(v: Json): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function same(a: Json, b: Json): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The merge patch that turns `before` into `after`; {} when nothing changed. */
export function diffPatch(before: Record<string, Json>, after: Record<string, Json>): Record<string, Json> {
  const patch: Record<string, Json> = {};
  for (const key of Object.keys(before)) {
    if (!(key in after) || after[key] === null) patch[key] = null;
  }
  for (const [key, value] of Object.entries(after)) {
    if (value === null) continue;
    const old = before[key];
    if (isObject(old) && isObject(value)) {
      const inner = diffPatch(old, value);
      if (Object.keys(inner).length) patch[key] = inner;
    } else if (!same(old, value)) {
      patch[key] = value;
    }
  }
  return patch;
}
