import { describe, expect, it } from 'vitest';
import kinds from '$lib/components/form/fixtures/kinds.json';
import type { TextNode } from '$lib/components/form/schema';
import { checkDraft, editDraft, mergePatch, newDraft, showApiError, type KindInfo } from './draft';

const webhook = kinds.items.find((k) => k.kind === 'webhook') as unknown as KindInfo;
const schedule = kinds.items.find((k) => k.kind === 'schedule') as unknown as KindInfo;

describe('trigger drafts', () => {
  it('start from the sample without its placeholder secret', () => {
    const draft = newDraft(webhook, 'deploy-main');
    const { body, ok } = checkDraft(webhook, draft);
    expect(ok).toBe(true);
    expect(body).toEqual({
      kind: 'webhook',
      name: 'deploy-main',
      config: { provider: 'github', filters: { branch: 'main' }, rate_limit_per_minute: 60 }
    });
  });

  it('need a slug name and a valid config', () => {
    const draft = newDraft(schedule, 'Nightly Build');
    (draft.form.f.cron as TextNode).v = '';
    expect(checkDraft(schedule, draft).ok).toBe(false);
    expect(draft.nameErrors).toEqual([{ path: 'name', code: 'slug' }]);
    expect(draft.errors).toEqual([{ path: 'cron', code: 'required' }]);
    draft.name = '';
    checkDraft(schedule, draft);
    expect(draft.nameErrors[0].code).toBe('required');
  });

  it('take server answers onto the fields they name', () => {
    const draft = newDraft(schedule, 'nightly');
    const details = [{ field: 'cron', message: "'x' is not a cron expression" }];
    expect(showApiError(schedule, draft, { code: 'invalid_config', details }, 'bad')).toBe(true);
    expect(draft.errors.map((e) => e.path)).toEqual(['cron']);
    expect(showApiError(schedule, draft, { code: 'duplicate', details: null }, 'taken')).toBe(true);
    expect(draft.nameErrors).toEqual([{ path: 'name', code: 'text', params: { text: 'taken' } }]);
    expect(showApiError(schedule, draft, { code: 'forbidden', details: null }, 'no')).toBe(false);
  });

  it('edit a masked secret without revealing or changing it', () => {
    const shown = { provider: 'github', secret: '**********', filters: { branch: 'main' } };
    const draft = editDraft(webhook, { name: 'hook', config: shown });
    (draft.form.f.provider as TextNode).v = 'gitea';
    const { body } = checkDraft(webhook, draft);
    expect(mergePatch(shown, body.config)).toEqual({ provider: 'gitea', rate_limit_per_minute: 60 });
  });
});

describe('mergePatch', () => {
  it('sends changes, nulls removed keys and recurses into objects', () => {
    expect(mergePatch({ a: 1, b: { c: 1, d: 2 }, e: [1] }, { a: 1, b: { c: 2 }, e: [1, 2], f: 'x' })).toEqual({
      b: { c: 2, d: null },
      e: [1, 2],
      f: 'x'
    });
    expect(mergePatch({ a: 1 }, { a: 1 })).toEqual({});
  });
});
