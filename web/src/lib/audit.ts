// An audit row's details as lines a person reads ("fields: config, env") instead of raw JSON;
// ids of apps, triggers, projects and users are put as their names.

export type DetailLine = { key: string; value: string };

const ID = /^(wl|tr|pj|us)_[0-9a-f]{6,}$/;

function scalar(v: unknown, name: (id: string) => string): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'string') return ID.test(v) ? name(v) : v;
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function detailLines(details: Record<string, unknown>, name: (id: string) => string, prefix = ''): DetailLine[] {
  const out: DetailLine[] = [];
  for (const [k, v] of Object.entries(details)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length) {
      out.push(...detailLines(v as Record<string, unknown>, name, key));
    } else if (Array.isArray(v)) {
      out.push({ key, value: v.length ? v.map((x) => scalar(x, name)).join(', ') : '—' });
    } else {
      out.push({ key, value: scalar(v, name) });
    }
  }
  return out;
}
