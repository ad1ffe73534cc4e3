import { describe, expect, it } from 'vitest';
import { filterHref } from './filters';

describe('filterHref', () => {
  it('sets, replaces and removes filters, keeping the others', () => {
    const url = new URL('http://x/apps?project=web&stage=prod&kind=image');
    expect(filterHref(url, { kind: 'compose' })).toBe('/apps?project=web&stage=prod&kind=compose');
    expect(filterHref(url, { project: 'api', stage: '' })).toBe('/apps?project=api&kind=image');
    expect(filterHref(new URL('http://x/audit?target_id=7'), { target_id: '' })).toBe('/audit');
    expect(filterHref(new URL('http://x/triggers'), { kind: 'webhook' })).toBe('/triggers?kind=webhook');
  });
});
