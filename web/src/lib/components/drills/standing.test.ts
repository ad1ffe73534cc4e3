import { describe, expect, it } from 'vitest';
import { byWorkload, drillEnded, latestFailed, type Standing } from './standing';

const s = (over: Partial<Standing>): Standing => ({
  workload_id: 'wl_1',
  last_status: 'passed',
  last_drill_id: 'dr_1',
  last_finished_at: '2026-12-01T05:00:00Z',
  verified_at: '2026-12-01T05:00:00Z',
  ...over
});

describe('drill standings', () => {
  it('keys by workload', () => {
    const map = byWorkload([s({}), s({ workload_id: 'wl_2' })]);
    expect([...map.keys()]).toEqual(['wl_1', 'wl_2']);
  });
  it('marks a workload whose latest drill failed, even when one passed before', () => {
    expect(latestFailed(s({ last_status: 'failed' }))).toBe(true);
    expect(latestFailed(s({}))).toBe(false);
    expect(latestFailed(undefined)).toBe(false);
  });
  it('knows when a drill ended', () => {
    expect(drillEnded('running')).toBe(false);
    expect(drillEnded('passed')).toBe(true);
    expect(drillEnded('failed')).toBe(true);
  });
});
