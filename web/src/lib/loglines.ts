// Deployment and snapshot logs in the reader's language.
//
// The server writes each line in English (`HH:MM:SS <text>`) from the templates of
// moorage/log_catalog.py, which en.json keeps under `loglines`. A line that matches a
// template is shown with the same code's template of the reader's language, filled with
// the values read out of the line; anything else (Docker's pull progress, a plugin's own
// lines) is shown as written.
import { interpolate, type Messages } from './i18n/translate';

type Matcher = { code: string; pattern: RegExp; names: string[] };

const PLACEHOLDER = /\{(\w+)\}/g;
const STAMP = /^(\d\d:\d\d:\d\d )(.*)$/s;

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Matchers of the English templates, the longest literal text first, so
 * "removed the previous container {name}" is tried before "removed {name}". */
export function matchers(english: Record<string, string>): Matcher[] {
  const out = Object.entries(english).map(([code, template]) => {
    const names = [...template.matchAll(PLACEHOLDER)].map((m) => m[1]);
    const literal = template.split(PLACEHOLDER).filter((_, i) => i % 2 === 0);
    const source = literal.map(escape).join('(.*?)');
    return { code, pattern: new RegExp(`^${source}$`, 's'), names, size: literal.join('').length };
  });
  out.sort((a, b) => b.size - a.size);
  return out.map(({ code, pattern, names }) => ({ code, pattern, names }));
}

/** Placeholders that hold Moorage's own words (a reason, a probe's answer), read in turn;
 * every other value (a name, an image, the app's own output) is data and shown as it is. */
const NESTED = new Set(['reason', 'last']);

/** One line (without its time stamp) in the language of `templates`. A reason read out of
 * it is itself read the same way ("deploy failed: {reason}" holds a reason that has a
 * template of its own), a few levels deep. */
export function localizeLine(
  text: string,
  found: Matcher[],
  templates: Record<string, string>,
  depth = 0
): string {
  for (const m of found) {
    const hit = m.pattern.exec(text);
    if (!hit || !(m.code in templates)) continue;
    const params = Object.fromEntries(
      m.names.map((name, i) => [
        name,
        depth < 3 && NESTED.has(name) ? localizeLine(hit[i + 1], found, templates, depth + 1) : hit[i + 1]
      ])
    );
    return interpolate(templates[m.code], params);
  }
  return text;
}

const cache = new Map<Messages, Matcher[]>();

function matchersOf(english: Messages): Matcher[] {
  let found = cache.get(english);
  if (!found) {
    found = matchers((english.loglines ?? {}) as Record<string, string>);
    cache.set(english, found);
  }
  return found;
}

/** One text the server wrote from its templates (a deployment's `error`, no time stamp)
 * in the language of `messages`. */
export function localizeText(text: string, english: Messages, messages: Messages): string {
  if (messages === english) return text;
  return localizeLine(text, matchersOf(english), (messages.loglines ?? {}) as Record<string, string>);
}

/** A whole log (`HH:MM:SS text` lines) in the language of `messages`, read against the
 * English templates in `english`. English in, English out. */
export function localizeLog(log: string, english: Messages, messages: Messages): string {
  if (messages === english) return log;
  const theirs = (messages.loglines ?? {}) as Record<string, string>;
  const use = matchersOf(english);
  return log
    .split('\n')
    .map((line) => {
      const stamped = STAMP.exec(line);
      return stamped ? stamped[1] + localizeLine(stamped[2], use, theirs) : localizeLine(line, use, theirs);
    })
    .join('\n');
}
