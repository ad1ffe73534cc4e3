// Small pure formatting helpers of the app page; the components translate what these return.
import type { Schemas } from '$lib/api/client';
import { members } from '$lib/api/members';

export type Duration =
  | { unit: 'ms'; n: number }
  | { unit: 's'; n: number }
  | { unit: 'm'; m: number; s: number }
  | { unit: 'h'; h: number; m: number };

/** How long something took, or has been running when `end` is missing; null before it started. */
export function duration(
  start: string | null | undefined,
  end: string | null | undefined,
  now: number = Date.now()
): Duration | null {
  if (!start) return null;
  const ms = Math.max(0, (end ? Date.parse(end) : now) - Date.parse(start));
  if (Number.isNaN(ms)) return null;
  if (ms < 1000) return { unit: 'ms', n: Math.round(ms) };
  const seconds = ms / 1000;
  // Below 10 s a tenth of a second still says something; above it is noise.
  if (seconds < 60) return { unit: 's', n: seconds < 10 ? Math.round(seconds * 10) / 10 : Math.round(seconds) };
  const whole = Math.round(seconds);
  if (whole < 3600) return { unit: 'm', m: Math.floor(whole / 60), s: whole % 60 };
  return { unit: 'h', h: Math.floor(whole / 3600), m: Math.floor((whole % 3600) / 60) };
}

export type Reason = { key: 'manual' | 'trigger' | 'chain' | 'promote' | 'restore' | 'other'; ref: string };

/** A deployment's reason (`manual`, `trigger:<id>`, `chain:<workload>`…) split for display. */
export function parseReason(reason: string): Reason {
  if (reason === 'manual') return { key: 'manual', ref: '' };
  const at = reason.indexOf(':');
  const head = at < 0 ? reason : reason.slice(0, at);
  const ref = at < 0 ? '' : reason.slice(at + 1);
  if (head === 'trigger' || head === 'chain' || head === 'promote' || head === 'restore') return { key: head, ref };
  return { key: 'other', ref: reason };
}

type DeploymentStatus = Schemas['DeploymentStatus'];
type Finished = Extract<DeploymentStatus, 'succeeded' | 'failed' | 'interrupted'>;
/** A deployment in one of these may still change what runs (a new status must be put here
 * or in FINISHED before the UI compiles). */
export const PENDING: ReadonlySet<string> = new Set(members<Exclude<DeploymentStatus, Finished>>()(['queued', 'running']));
/** The deployment has ended. */
export const FINISHED: ReadonlySet<string> = new Set(members<Finished>()(['succeeded', 'failed', 'interrupted']));

/** The config as readable blocks: multi-line strings (a Compose file) shown apart from the JSON. */
export function readableConfig(config: Record<string, unknown>): {
  json: string;
  blocks: { key: string; text: string }[];
} {
  const rest: Record<string, unknown> = {};
  const blocks: { key: string; text: string }[] = [];
  for (const [key, value] of Object.entries(config)) {
    if (typeof value === 'string' && value.includes('\n')) blocks.push({ key, text: value });
    else rest[key] = value;
  }
  return { json: Object.keys(rest).length ? prettyJson(rest) : '', blocks };
}

/** A host power a refused change asked for (the `details` of a 403 `needs_admin`). */
export type AskedPower = { service: string; power: string; detail: string };

/** The host powers named in a `needs_admin` error's details; [] for any other shape. */
export function askedPowers(details: unknown): AskedPower[] {
  if (!Array.isArray(details)) return [];
  return details.flatMap((d) => {
    if (!d || typeof d !== 'object') return [];
    const { service, power, detail } = d as Record<string, unknown>;
    if (typeof service !== 'string' || typeof power !== 'string') return [];
    return [{ service, power, detail: typeof detail === 'string' ? detail : '' }];
  });
}

/** The `details` of a 422 as "field: message" lines (FastAPI and kind validation both use that shape). */
export function problemLines(details: unknown): string[] {
  if (!Array.isArray(details)) return [];
  return details.map((d) => {
    if (d && typeof d === 'object') {
      const { field, message } = d as { field?: unknown; message?: unknown };
      if (message !== undefined) return field ? `${String(field)}: ${String(message)}` : String(message);
    }
    return typeof d === 'string' ? d : JSON.stringify(d);
  });
}

/** The other apps a refusal's details name (`{"workload": id, "workload_name": name}`), each once. */
export function clashingApps(details: unknown): string[] {
  if (!Array.isArray(details)) return [];
  const names = details
    .map((d) => {
      if (!d || typeof d !== 'object') return undefined;
      const { workload, workload_name } = d as { workload?: unknown; workload_name?: unknown };
      return typeof workload_name === 'string' ? workload_name : workload;
    })
    .filter((name): name is string => typeof name === 'string');
  return [...new Set(names)];
}

const INLINE_WIDTH = 60;

/** JSON indented by two, but nested short arrays and objects of plain values stay on one line. */
export function prettyJson(value: unknown, indent = ''): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  const inner = indent + '  ';
  const entries = Array.isArray(value)
    ? value.map((v) => ({ key: '', v }))
    : Object.entries(value).map(([k, v]) => ({ key: `${JSON.stringify(k)}: `, v }));
  const [open, close] = Array.isArray(value) ? ['[', ']'] : ['{', '}'];
  if (entries.length === 0) return open + close;
  const flat = entries.every((e) => e.v === null || typeof e.v !== 'object');
  if (flat && indent) {
    const line = `${open}${entries.map((e) => e.key + JSON.stringify(e.v)).join(', ')}${close}`;
    if (line.length + indent.length <= INLINE_WIDTH) return line;
  }
  const lines = entries.map((e) => inner + e.key + prettyJson(e.v, inner));
  return `${open}\n${lines.join(',\n')}\n${indent}${close}`;
}

/** The image and the ports a config names, for the apps list: read by the keys the kind's
 * config uses (`image`, `ports: [{container, host, protocol}]`), empty when it has none. */
export function configSummary(config: Record<string, unknown>): { image: string; ports: string[] } {
  const image = typeof config.image === 'string' ? config.image : '';
  const list = Array.isArray(config.ports) ? config.ports : [];
  const ports = list.flatMap((p) => {
    if (typeof p !== 'object' || p === null) return [];
    const { container, host, protocol } = p as Record<string, unknown>;
    if (typeof container !== 'number') return [];
    const proto = protocol === 'udp' ? '/udp' : '';
    return [typeof host === 'number' ? `${host}→${container}${proto}` : `${container}${proto}`];
  });
  return { image, ports };
}
