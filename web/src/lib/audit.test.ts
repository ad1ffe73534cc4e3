import { describe, expect, it } from 'vitest';
import { detailLines } from './audit';

describe('detailLines', () => {
  const names: Record<string, string> = { wl_0123456789abcdef: 'shop' };
  const name = (id: string) => names[id] ?? id;

  it('flattens objects, joins lists and names ids', () => {
    expect(
      detailLines({ fields: ['config', 'env'], source: 'wl_0123456789abcdef', granted: { powers: ['privileged'] }, on: true, gone: null }, name)
    ).toEqual([
      { key: 'fields', value: 'config, env' },
      { key: 'source', value: 'shop' },
      { key: 'granted.powers', value: 'privileged' },
      { key: 'on', value: 'true' },
      { key: 'gone', value: '—' }
    ]);
  });

  it('keeps an unknown id and an empty object as they are', () => {
    expect(detailLines({ t: 'tr_00aa11bb22cc33dd', e: {} }, name)).toEqual([
      { key: 't', value: 'tr_00aa11bb22cc33dd' },
      { key: 'e', value: '{}' }
    ]);
  });
});
