// Short-lived result messages at the corner of the screen.
import { ApiError } from '$lib/api/client';
import { t, has } from '$lib/i18n/index.svelte';
import { askedPowers, clashingApps } from '$lib/components/app/format';

export type Toast = { id: number; kind: 'ok' | 'error'; text: string };
export const toasts = $state<Toast[]>([]);
let next = 1;

export function toast(text: string, kind: Toast['kind'] = 'ok'): void {
  const id = next++;
  toasts.push({ id, kind, text });
  setTimeout(() => dismiss(id), kind === 'error' ? 8000 : 4000);
}

export function dismiss(id: number): void {
  const i = toasts.findIndex((x) => x.id === id);
  if (i >= 0) toasts.splice(i, 1);
}

/** An error's parameters: the scalar members of an object `details` (lists are not params). */
function errorParams(details: unknown): Record<string, string | number> {
  if (typeof details !== 'object' || details === null || Array.isArray(details)) return {};
  return Object.fromEntries(
    Object.entries(details).filter((kv): kv is [string, string | number] => ['string', 'number'].includes(typeof kv[1]))
  );
}

/** The message for an API error, translated by its code with its parameters; a code the UI
 * has no message for shows the server's (English) message, else a line by HTTP status. */
export function errorText(e: unknown): string {
  if (e instanceof ApiError) {
    if (has(`errors.${e.code}`)) return t(`errors.${e.code}`, errorParams(e.details));
    if (e.message) return e.message;
    if (e.status >= 500) return t('errors.server');
    if (e.status === 422 || e.status === 400) return t('errors.invalid_input');
    return t('errors.unknown', { status: e.status });
  }
  return t('errors.network');
}

/** Why a change was refused as `needs_admin`: one line per host power, naming its service. */
export function hostPowerLines(e: unknown): string[] {
  if (!(e instanceof ApiError) || e.code !== 'needs_admin') return [];
  return askedPowers(e.details).map((p) => t('common.host_power', p));
}

/** The other apps a refusal names (a shared volume, a host port), one line each. */
export function clashLines(e: unknown): string[] {
  if (!(e instanceof ApiError)) return [];
  return clashingApps(e.details).map((name) => t('common.clashes_with', { name }));
}

export function toastError(e: unknown): void {
  toast([errorText(e), ...hostPowerLines(e), ...clashLines(e)].join(' '), 'error');
}
