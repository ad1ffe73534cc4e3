// Pure lookup, plural choice and interpolation; the reactive wrapper is in index.svelte.ts.
export type Messages = { [key: string]: string | Messages };
export type Params = Record<string, string | number>;

const PLURAL_CATEGORIES = new Set(['zero', 'one', 'two', 'few', 'many', 'other']);

/** An object whose keys are all CLDR plural categories (with `other`) is a plural entry. */
export function isPlural(value: unknown): value is Record<string, string> {
  if (typeof value !== 'object' || value === null) return false;
  const keys = Object.keys(value);
  return (
    keys.includes('other') &&
    keys.every((k) => PLURAL_CATEGORIES.has(k) && typeof (value as Messages)[k] === 'string')
  );
}

export function lookup(messages: Messages, key: string): string | Messages | undefined {
  let node: string | Messages | undefined = messages;
  for (const part of key.split('.')) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = node[part];
  }
  return node;
}

export function interpolate(text: string, params: Params = {}): string {
  return text.replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in params ? String(params[name]) : whole
  );
}

/** The message for `key` in `lang`; plurals pick their form by `params.count`. */
export function translate(messages: Messages, lang: string, key: string, params: Params = {}): string {
  const found = lookup(messages, key);
  if (typeof found === 'string') return interpolate(found, params);
  if (isPlural(found)) {
    const count = Number(params.count ?? 0);
    const form = new Intl.PluralRules(lang).select(count);
    return interpolate(found[form] ?? found.other, params);
  }
  return key;
}

/** Every leaf key (plural entries count as one leaf) with the placeholders it uses. */
export function leaves(messages: Messages, prefix = ''): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [k, v] of Object.entries(messages)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (typeof v === 'string') out.set(key, placeholders(v));
    else if (isPlural(v)) out.set(key, [...new Set(Object.values(v).flatMap(placeholders))].sort());
    else for (const [kk, vv] of leaves(v, key)) out.set(kk, vv);
  }
  return out;
}

export function placeholders(text: string): string[] {
  return [...new Set([...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]))].sort();
}
