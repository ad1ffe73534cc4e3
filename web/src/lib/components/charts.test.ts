import { describe, expect, it } from 'vitest';
import { deployMarks, snapshotBars } from './charts';

const at = (minute: number) => new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString();

describe('deployMarks', () => {
  it('orders oldest first and tells a rollback from a first failure', () => {
    const items = [
      { id: 'd4', status: 'running', created_at: at(4) },
      { id: 'd3', status: 'failed', created_at: at(3) },
      { id: 'd2', status: 'succeeded', created_at: at(2) },
      { id: 'd1', status: 'failed', created_at: at(1) },
      { id: 'd0', status: 'interrupted', created_at: at(0) }
    ];
    expect(deployMarks(items).map((m) => [m.id, m.outcome])).toEqual([
      ['d0', 'interrupted'],
      ['d1', 'failed'],
      ['d2', 'succeeded'],
      ['d3', 'rolled_back'],
      ['d4', 'pending']
    ]);
    expect(deployMarks(items, 2).map((m) => m.id)).toEqual(['d3', 'd4']);
  });
});

describe('snapshotBars', () => {
  it('places snapshots on a time axis with heights by size', () => {
    const bars = snapshotBars(
      [
        { id: 's2', created_at: at(10), size: 50 },
        { id: 's1', created_at: at(0), size: 100 },
        { id: 's3', created_at: at(5), size: 0 }
      ],
      200,
      40
    );
    expect(bars.map((b) => [b.id, b.x, b.height])).toEqual([
      ['s1', 0, 40],
      ['s3', 100, 2],
      ['s2', 200, 20]
    ]);
  });

  it('puts a lone snapshot in the middle, and nothing for none', () => {
    expect(snapshotBars([{ id: 's', created_at: at(0), size: 0 }], 100, 10)).toEqual([
      { id: 's', at: at(0), size: 0, x: 50, height: 2 }
    ]);
    expect(snapshotBars([], 100, 10)).toEqual([]);
  });
});
