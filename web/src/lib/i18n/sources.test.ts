// Every visible string comes from the catalogs: no words in markup, no t() key that doesn't exist.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parse } from 'svelte/compiler';
import { describe, expect, it } from 'vitest';
import en from './en.json';
import { lookup, type Messages } from './translate';

const SRC = join(import.meta.dirname, '..', '..');
// Attributes a person reads or hears (screen readers).
const VISIBLE_ATTRIBUTES = new Set(['placeholder', 'title', 'aria-label', 'alt', 'label', 'aria-description']);
const LETTER = /\p{L}/u;

function files(dir: string, suffixes: string[]): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return files(path, suffixes);
    return suffixes.some((s) => name.endsWith(s)) && !name.endsWith('.test.ts') ? [path] : [];
  });
}

type Node = { type?: string; [key: string]: unknown };

/** Literal text a user would see in a component's markup. */
export function hardCoded(source: string): string[] {
  const ast = parse(source, { modern: true });
  const found: string[] = [];
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (typeof node !== 'object' || node === null) return;
    const n = node as Node;
    if (n.type === 'Text' && typeof n.data === 'string' && LETTER.test(n.data)) found.push(n.data.trim());
    for (const [key, value] of Object.entries(n)) {
      if (key === 'attributes' && Array.isArray(value)) {
        for (const attr of value as Node[]) {
          if (attr.type !== 'Attribute' || !Array.isArray(attr.value)) continue;
          if (VISIBLE_ATTRIBUTES.has(String(attr.name))) {
            for (const part of attr.value as Node[]) {
              if (part.type === 'Text' && LETTER.test(String(part.data))) found.push(`${attr.name}="${part.data}"`);
            }
          }
        }
        continue;
      }
      if (key !== 'parent' && key !== 'metadata') visit(value);
    }
  };
  visit(ast.fragment);
  return found;
}

describe('components', () => {
  it('finds words in markup (the check itself works)', () => {
    expect(hardCoded('<p>Hello {name}</p><input placeholder="Search" class="x" />')).toEqual([
      'Hello',
      'placeholder="Search"'
    ]);
    expect(hardCoded('<p>{t("a.b")} ×</p><a href="/apps" data-testid="x">{n}</a>')).toEqual([]);
  });

  it('contain no hard-coded user-visible string', () => {
    const offenders = files(SRC, ['.svelte']).flatMap((path) =>
      hardCoded(readFileSync(path, 'utf8')).map((text) => `${relative(SRC, path)}: ${text}`)
    );
    expect(offenders).toEqual([]);
  });

  it('only use translation keys that exist', () => {
    const missing: string[] = [];
    for (const path of files(SRC, ['.svelte', '.ts'])) {
      const text = readFileSync(path, 'utf8');
      for (const m of text.matchAll(/\bt\(\s*'([a-z0-9_.-]+)'/gi)) {
        if (lookup(en as Messages, m[1]) === undefined) missing.push(`${relative(SRC, path)}: ${m[1]}`);
      }
    }
    expect(missing).toEqual([]);
  });
});
