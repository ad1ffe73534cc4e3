// Volume rows as edited in the UI, and the PUT body they become.
import type { Schemas } from '$lib/api/client';
import { members } from '$lib/api/members';

export type Scope = Schemas['VolumeIn']['scope'];
/** The scopes moorage/volumes/paths.py supports (VOLUME_SCOPES), in the order offered. */
export const SCOPES = members<Scope>()(['stage', 'project', 'absolute']);
export type VolumeRow = {
  name: string;
  scope: Scope;
  source: string;
  target: string;
  read_only: boolean;
  /** Another app may mount the same directory when its volume says so too. */
  shared: boolean;
  /** compose: the service the bind goes to (SPEC 10). */
  service: string;
  host_path: string | null;
  problem: string | null;
  /** Only an admin may change or remove an absolute volume that is already saved. */
  locked: boolean;
};

export function rowsFromVolumes(items: Schemas['VolumeOut'][], admin: boolean): VolumeRow[] {
  return items.map((v) => ({
    name: v.name,
    scope: (SCOPES as readonly string[]).includes(v.scope) ? (v.scope as Scope) : 'stage',
    source: v.source,
    target: v.target,
    read_only: v.read_only,
    shared: v.shared,
    service: v.service ?? '',
    host_path: v.host_path ?? null,
    problem: v.problem ?? null,
    locked: v.scope === 'absolute' && !admin
  }));
}

export function blankVolume(): VolumeRow {
  return { name: '', scope: 'stage', source: '', target: '', read_only: false, shared: false, service: '', host_path: null, problem: null, locked: false };
}

export type VolumeField = 'name' | 'source' | 'target';
/** A row's missing fields, by row index: a blank row is an error, never silently dropped. */
export type VolumeProblems = Record<number, VolumeField[]>;

export function volumeProblems(rows: VolumeRow[]): VolumeProblems {
  const out: VolumeProblems = {};
  rows.forEach((r, i) => {
    const missing = (['name', 'source', 'target'] as const).filter((f) => !r[f].trim());
    if (missing.length) out[i] = missing;
  });
  return out;
}

export function volumeBody(rows: VolumeRow[]): Schemas['VolumeIn'][] {
  return rows.map((r) => ({
    name: r.name.trim(),
    scope: r.scope,
    source: r.source.trim(),
    target: r.target.trim(),
    read_only: r.read_only,
    shared: r.shared,
    ...(r.service.trim() ? { service: r.service.trim() } : {})
  }));
}
