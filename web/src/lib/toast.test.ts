import { afterEach, describe, expect, it } from 'vitest';
import { ApiError } from '$lib/api/client';
import { i18n } from '$lib/i18n/index.svelte';
import ru from '$lib/i18n/ru.json';
import { errorText } from './toast.svelte';

describe('errorText', () => {
  afterEach(() => {
    i18n.lang = 'en';
  });

  it('translates by the error code, not by the English message', () => {
    i18n.lang = 'ru';
    expect(errorText(new ApiError(404, 'not_found', 'workload wl_1 not found'))).toBe(ru.errors.not_found);
  });

  it('falls back to the server message for a code it has no message for', () => {
    i18n.lang = 'ru';
    expect(errorText(new ApiError(409, 'brand_new_code', 'the English message'))).toBe('the English message');
    expect(errorText(new ApiError(503, 'brand_new_code', ''))).toBe(ru.errors.server);
  });
});
