// What every list on a page repeats: fetch, remember whether the first answer came and why the
// last attempt failed, and (for lists that change on their own) fetch again every so often.
import { errorText } from '$lib/toast.svelte';

export class Loader {
  /** True once the first attempt has finished, whether it succeeded or not. */
  loaded = $state(false);
  /** What the last attempt threw; null after a success. */
  error = $state.raw<unknown>(null);
  readonly #fetch: () => Promise<unknown>;

  /** `fetch` gets the data and stores it where the page keeps it; it may throw. */
  constructor(fetch: () => Promise<unknown>) {
    this.#fetch = fetch;
  }

  /** The translated reason the last attempt failed, or '' (computed on read: follows the language). */
  get failure(): string {
    return this.error === null ? '' : errorText(this.error);
  }

  /** Fetch once. Never throws: a failure is kept in `error`, so it can back a Refresh button. */
  load = async (): Promise<void> => {
    try {
      await this.#fetch();
      this.error = null;
    } catch (e) {
      this.error = e ?? new Error('load failed');
    } finally {
      this.loaded = true;
    }
  };

  /** Fetch now and every `ms` after; returns the stop function, made to be an $effect's return. */
  poll(ms: number): () => void {
    void this.load();
    const timer = setInterval(this.load, ms);
    return () => clearInterval(timer);
  }
}
