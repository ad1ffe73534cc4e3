// en and ru must say the same things: same keys, same placeholders, every plural form.
import { describe, expect, it } from 'vitest';
import en from './en.json';
import ru from './ru.json';
import { isPlural, leaves, translate, type Messages } from './translate';


function plurals(messages: Messages, prefix = ''): [string, Record<string, string>][] {
  return Object.entries(messages).flatMap(([k, v]) => {
    const key = prefix ? `${prefix}.${k}` : k;
    if (typeof v === 'string') return [];
    return isPlural(v) ? [[key, v] as [string, Record<string, string>]] : plurals(v, key);
  });
}

describe('translations', () => {
  const enLeaves = leaves(en as Messages);
  const ruLeaves = leaves(ru as Messages);

  it('have the same keys in en and ru', () => {
    const missingInRu = [...enLeaves.keys()].filter((k) => !ruLeaves.has(k));
    const missingInEn = [...ruLeaves.keys()].filter((k) => !enLeaves.has(k));
    expect({ missingInRu, missingInEn }).toEqual({ missingInRu: [], missingInEn: [] });
  });

  it('use the same placeholders in en and ru', () => {
    const differ = [...enLeaves.entries()]
      .filter(([k, p]) => ruLeaves.has(k) && JSON.stringify(p) !== JSON.stringify(ruLeaves.get(k)))
      .map(([k, p]) => `${k}: en ${p} ru ${ruLeaves.get(k)}`);
    expect(differ).toEqual([]);
  });

  it('have every plural form each language needs', () => {
    for (const [lang, messages] of Object.entries({ en, ru })) {
      const needed = new Intl.PluralRules(lang).resolvedOptions().pluralCategories;
      for (const [key, forms] of plurals(messages as Messages)) {
        expect(Object.keys(forms), `${lang} ${key}`).toEqual(expect.arrayContaining(needed));
      }
    }
  });

  it('spell plurals with the same forms in en and ru (same keys, form for form)', () => {
    const ruForms = new Map(plurals(ru as Messages).map(([key, forms]) => [key, Object.keys(forms).sort()]));
    const differ = plurals(en as Messages)
      .filter(([key, forms]) => JSON.stringify(Object.keys(forms).sort()) !== JSON.stringify(ruForms.get(key)))
      .map(([key]) => key);
    expect(differ).toEqual([]);
  });

  it('have no empty message', () => {
    for (const messages of [en, ru]) {
      const empty = [...leaves(messages as Messages).keys()].filter((k) => {
        const v = translate(messages as Messages, 'en', k, { count: 1 });
        return v.trim() === '';
      });
      expect(empty).toEqual([]);
    }
  });
});

describe('translate', () => {
  const messages: Messages = {
    apps: { count: { one: '{count} приложение', few: '{count} приложения', many: '{count} приложений', other: '{count} приложения' } },
    hello: 'Привет, {name}'
  };

  it('picks Russian plural forms by count', () => {
    const say = (n: number) => translate(messages, 'ru', 'apps.count', { count: n });
    expect([1, 2, 5, 11, 21, 22, 25, 101, 1.5].map(say)).toEqual([
      '1 приложение', '2 приложения', '5 приложений', '11 приложений', '21 приложение',
      '22 приложения', '25 приложений', '101 приложение', '1.5 приложения'
    ]);
  });

  it('fills placeholders and leaves unknown ones visible', () => {
    expect(translate(messages, 'ru', 'hello', { name: 'Ана' })).toBe('Привет, Ана');
    expect(translate(messages, 'ru', 'hello')).toBe('Привет, {name}');
  });

  it('answers the key itself when a message is missing', () => {
    expect(translate(messages, 'ru', 'nope.nothing')).toBe('nope.nothing');
  });
});
