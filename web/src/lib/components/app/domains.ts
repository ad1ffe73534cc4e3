// A domain row as the Domains tab edits it, and the body PUT .../domains takes.
import type { components } from '$lib/api/schema';

export type DomainOut = components['schemas']['DomainOut'];
export type DomainIn = components['schemas']['DomainIn'];
export const TLS_MODES = ['acme', 'internal', 'off'] as const;
export type TlsMode = (typeof TLS_MODES)[number];

export interface DomainRow {
  host: string;
  port: string;
  service: string;
  tls: TlsMode;
  redirect_http: boolean;
  dns_provider: string;
  status: DomainOut['status'] | null;
}

export function rowsFromDomains(items: DomainOut[]): DomainRow[] {
  return items.map((d) => ({
    host: d.host,
    port: String(d.port),
    service: d.service ?? '',
    tls: (TLS_MODES as readonly string[]).includes(d.tls) ? (d.tls as TlsMode) : 'acme',
    redirect_http: d.redirect_http,
    dns_provider: d.dns_provider ?? '',
    status: d.status
  }));
}

export function blankDomain(): DomainRow {
  return { host: '', port: '', service: '', tls: 'acme', redirect_http: true, dns_provider: '', status: null };
}

/** Rows with a missing host or a port that is not a number, by index. */
export function domainProblems(rows: DomainRow[]): Record<number, ('host' | 'port')[]> {
  const out: Record<number, ('host' | 'port')[]> = {};
  rows.forEach((r, i) => {
    const bad: ('host' | 'port')[] = [];
    if (!r.host.trim()) bad.push('host');
    if (!/^\d{1,5}$/.test(r.port.trim())) bad.push('port');
    if (bad.length) out[i] = bad;
  });
  return out;
}

export function domainBody(rows: DomainRow[]): DomainIn[] {
  return rows.map((r) => ({
    host: r.host.trim(),
    port: Number(r.port.trim()),
    tls: r.tls,
    redirect_http: r.redirect_http,
    ...(r.service.trim() ? { service: r.service.trim() } : {}),
    ...(r.dns_provider.trim() ? { dns_provider: r.dns_provider.trim() } : {})
  }));
}
