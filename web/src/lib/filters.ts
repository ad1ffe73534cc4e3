// List filters live in the address (?project=…), so a filtered list can be linked and reloaded.
import { goto } from '$app/navigation';
import { page } from '$app/state';

/** `url` with each named filter set, or removed where its value is empty: path and query. */
export function filterHref(url: URL, changes: Record<string, string>): string {
  const next = new URL(url);
  for (const [name, value] of Object.entries(changes)) {
    if (value) next.searchParams.set(name, value);
    else next.searchParams.delete(name);
  }
  return next.pathname + next.search;
}

/** Go to the current page with these filters changed, keeping focus and scroll. */
export function setFilters(changes: Record<string, string>): void {
  goto(filterHref(page.url, changes), { keepFocus: true, noScroll: true });
}
