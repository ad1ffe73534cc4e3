import { afterEach, describe, expect, it, vi } from 'vitest';
import { fetchWithRetry } from './client';

describe('fetchWithRetry', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('repeats a read once after a network failure', async () => {
    const fetch = vi.fn().mockRejectedValueOnce(new TypeError('network changed')).mockResolvedValue(new Response('ok'));
    vi.stubGlobal('fetch', fetch);
    const response = await fetchWithRetry(new Request('http://x/api/workloads'));
    expect(await response.text()).toBe('ok');
    expect(fetch).toHaveBeenCalledTimes(2);
  });

  it('never repeats a write', async () => {
    const fetch = vi.fn().mockRejectedValue(new TypeError('network changed'));
    vi.stubGlobal('fetch', fetch);
    await expect(fetchWithRetry(new Request('http://x/api/deploy', { method: 'POST', body: '{}' }))).rejects.toThrow();
    expect(fetch).toHaveBeenCalledTimes(1);
  });
});
