// Merge translations into src/lib/i18n/{en,ru}.json under a lock, so parallel edits don't clash.
// Usage: node scripts/i18n-add.mjs part.json   where part.json is {"en": {...}, "ru": {...}}
import { readFileSync, writeFileSync, mkdirSync, rmdirSync } from 'node:fs';

const part = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const lock = new URL('../src/lib/i18n/.lock', import.meta.url);
for (let i = 0; ; i++) {
  try {
    mkdirSync(lock);
    break;
  } catch {
    if (i > 200) throw new Error('i18n lock held too long: remove src/lib/i18n/.lock');
    await new Promise((r) => setTimeout(r, 50));
  }
}
function merge(into, from) {
  for (const [k, v] of Object.entries(from)) {
    if (typeof v === 'object' && v !== null && typeof into[k] === 'object' && !('other' in v)) merge(into[k], v);
    else into[k] = v;
  }
}
try {
  for (const lang of ['en', 'ru']) {
    if (!part[lang]) continue;
    const file = new URL(`../src/lib/i18n/${lang}.json`, import.meta.url);
    const current = JSON.parse(readFileSync(file, 'utf8'));
    merge(current, part[lang]);
    writeFileSync(file, JSON.stringify(current, null, 2) + '\n');
  }
} finally {
  rmdirSync(lock);
}
