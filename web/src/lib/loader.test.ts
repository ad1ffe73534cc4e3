import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiError } from '$lib/api/client';
import { errorText } from '$lib/toast.svelte';
import { Loader } from './loader.svelte';

describe('Loader', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('is not loaded before the first answer, and loaded with no failure after a success', async () => {
    let items: number[] = [];
    const list = new Loader(async () => {
      items = [1, 2];
    });
    expect(list.loaded).toBe(false);
    expect(list.failure).toBe('');
    await list.load();
    expect(items).toEqual([1, 2]);
    expect(list.loaded).toBe(true);
    expect(list.error).toBeNull();
    expect(list.failure).toBe('');
  });

  it('keeps a failure as translated text without throwing, and clears it on the next success', async () => {
    let fail = true;
    const refused = new ApiError(403, 'forbidden', 'no');
    const list = new Loader(async () => {
      if (fail) throw refused;
    });
    await expect(list.load()).resolves.toBeUndefined();
    expect(list.loaded).toBe(true);
    expect(list.error).toBe(refused);
    expect(list.failure).toBe(errorText(refused));
    expect(list.failure).not.toBe('');
    fail = false;
    await list.load();
    expect(list.error).toBeNull();
    expect(list.failure).toBe('');
  });

  it('counts even a thrown undefined as a failure', async () => {
    const list = new Loader(() => Promise.reject(undefined));
    await list.load();
    expect(list.failure).toBe(errorText(undefined));
  });

  it('polls: loads at once, then every interval until stopped', async () => {
    vi.useFakeTimers();
    const fetch = vi.fn(async () => {});
    const list = new Loader(fetch);
    const stop = list.poll(5000);
    expect(fetch).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(5000);
    expect(fetch).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(10000);
    expect(fetch).toHaveBeenCalledTimes(4);
    stop();
    await vi.advanceTimersByTimeAsync(20000);
    expect(fetch).toHaveBeenCalledTimes(4);
    expect(list.loaded).toBe(true);
  });
});
