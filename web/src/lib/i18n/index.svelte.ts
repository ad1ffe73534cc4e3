// The UI's language: every visible string goes through t(); the choice persists in localStorage.
import en from './en.json';
import ru from './ru.json';
import { translate, lookup, type Messages, type Params } from './translate';

export const LANGS = { en, ru } as const satisfies Record<string, Messages>;
export type Lang = keyof typeof LANGS;
const STORAGE_KEY = 'moorage.lang';

function initial(): Lang {
  if (typeof localStorage !== 'undefined') {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (saved && saved in LANGS) return saved as Lang;
  }
  if (typeof navigator !== 'undefined' && navigator.language.toLowerCase().startsWith('ru')) return 'ru';
  return 'en';
}

export const i18n = $state({ lang: initial() });

export function setLang(lang: Lang): void {
  i18n.lang = lang;
  localStorage.setItem(STORAGE_KEY, lang);
  document.documentElement.lang = lang;
}

export function t(key: string, params?: Params): string {
  return translate(LANGS[i18n.lang], i18n.lang, key, params);
}

export function has(key: string): boolean {
  return lookup(LANGS[i18n.lang], key) !== undefined;
}

const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['year', 365 * 86400],
  ['month', 30 * 86400],
  ['day', 86400],
  ['hour', 3600],
  ['minute', 60],
  ['second', 1]
];

/** "3 minutes ago" / "3 минуты назад"; `now` is passed so a ticking clock can re-render it. */
export function relTime(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) return t('common.never');
  const seconds = Math.round((Date.parse(iso) - now) / 1000);
  const fmt = new Intl.RelativeTimeFormat(i18n.lang, { numeric: 'auto' });
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size || unit === 'second') return fmt.format(Math.round(seconds / size), unit);
  }
  return fmt.format(0, 'second');
}

export function absTime(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleString(i18n.lang) : '';
}

export function bytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const num = new Intl.NumberFormat(i18n.lang, { maximumFractionDigits: i ? 1 : 0 }).format(v);
  return `${num} ${t(`units.${units[i]}`)}`;
}
