// The app page's tabs live in the URL (?tab=), so each has its own address and survives reload.
export const TABS = ['overview', 'deployments', 'env', 'volumes', 'domains', 'triggers', 'snapshots'] as const;
export type Tab = (typeof TABS)[number];

export function tabOf(value: string | null | undefined): Tab {
  return (TABS as readonly string[]).includes(value ?? '') ? (value as Tab) : 'overview';
}

/** The address of `tab` on the current page; other tabs' parameters are dropped. */
export function tabHref(url: URL, tab: Tab, extra: Record<string, string> = {}): string {
  const params = new URLSearchParams();
  if (tab !== 'overview') params.set('tab', tab);
  for (const [k, v] of Object.entries(extra)) params.set(k, v);
  const query = params.toString();
  return url.pathname + (query ? `?${query}` : '');
}
