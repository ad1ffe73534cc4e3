// Translated names for things the backend names by code (kinds, audit actions), with the code as
// the fallback so a plugin or action the UI does not know yet still shows something readable.
import { t } from '$lib/i18n/index.svelte';

export function tOr(key: string, fallback: string): string {
  const text = t(key);
  return text === key ? fallback : text;
}

export function kindTitle(kind: string): string {
  return tOr(`kinds.${kind}.title`, kind);
}
