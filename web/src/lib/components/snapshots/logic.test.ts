import { describe, expect, it } from 'vitest';
import { anyCapturing, captureBody, capturePercent, manifestVolumes, MODES, ORIGINS, originKey, settled, shortSha, withStarted } from './logic';
import { importUrl, parseBody } from './upload';
import type { Snapshot } from '$lib/api/client';
import en from '$lib/i18n/en.json';
import ru from '$lib/i18n/ru.json';
import { lookup, type Messages } from '$lib/i18n/translate';

describe('capture', () => {
  it('sends no volume list when every volume is picked', () => {
    expect(captureBody('stop', ['a', 'b'], ['a', 'b'])).toEqual({ mode: 'stop' });
    expect(captureBody('pause', ['b', 'a'], ['a', 'b'])).toEqual({ mode: 'pause' });
  });

  it('sends the picked subset in the server order', () => {
    expect(captureBody('none', ['c', 'a'], ['a', 'b', 'c'])).toEqual({ mode: 'none', volumes: ['a', 'c'] });
  });

  it('sends no volume list when the volumes are unknown', () => {
    expect(captureBody('stop', [], [])).toEqual({ mode: 'stop' });
  });

  it('shows progress only when the total is known', () => {
    expect(capturePercent({ progress_bytes: 0, total_bytes: 0 })).toBeNull();
    expect(capturePercent({ progress_bytes: 50, total_bytes: 200 })).toBe(25);
    expect(capturePercent({ progress_bytes: 300, total_bytes: 200 })).toBe(100);
  });

  it('keeps a capture started after the list was asked for, until an answer lists it', () => {
    const started = { id: 'new', status: 'capturing' as const };
    const old = { id: 'old', status: 'ready' as const };
    // The answer was sent before the capture: its row stays, in front.
    expect(withStarted([old], [started, old], new Set(['new']))).toEqual([started, old]);
    expect(withStarted([], [started], new Set(['new']))).toEqual([started]);
    // A newer answer lists it: the answer's row (its newer status) wins, once.
    const ready = { id: 'new', status: 'ready' as const };
    expect(withStarted([ready, old], [started, old], new Set(['new']))).toEqual([ready, old]);
    // Rows not started since the request are the answer's to keep or drop (deleted elsewhere).
    expect(withStarted([], [started, old], new Set())).toEqual([]);
  });

  it('polls while anything captures and announces what this tab started', () => {
    const items: Pick<Snapshot, 'id' | 'status'>[] = [
      { id: 'a', status: 'ready' },
      { id: 'b', status: 'capturing' },
      { id: 'c', status: 'failed' }
    ];
    expect(anyCapturing(items)).toBe(true);
    expect(anyCapturing([items[0]])).toBe(false);
    expect(settled(new Set(['b', 'c']), items).map((s) => s.id)).toEqual(['c']);
  });
});

describe('display', () => {
  it('shortens a SHA-256', () => {
    expect(shortSha('0123456789abcdef0123')).toBe('0123456789ab');
    expect(shortSha('')).toBe('');
  });

  it('names known origins and leaves others raw', () => {
    expect(originKey('pre-restore')).toBe('snapshots.origin.pre-restore');
    expect(originKey('martian')).toBeNull();
  });

  it('reads the manifest sizes of the snapshot volumes', () => {
    const manifest = { volumes: [{ index: 0, name: 'data', bytes: 10, files: 2 }] };
    expect(manifestVolumes({ manifest, volumes: ['data', 'logs'] })).toEqual([
      { name: 'data', bytes: 10, files: 2 },
      { name: 'logs', bytes: null, files: null }
    ]);
    expect(manifestVolumes({ manifest: {}, volumes: ['x'] })).toEqual([{ name: 'x', bytes: null, files: null }]);
  });
});

describe('keys built at run time', () => {
  const keys = [
    ...MODES.flatMap((m) => [`snapshots.mode.${m}`, `snapshots.capture.help.${m}`]),
    ...ORIGINS.map((o) => `snapshots.origin.${o}`),
    ...['succeeded', 'failed', 'rolled_back', 'unknown'].flatMap((r) => [`restore.result.${r}.title`, `restore.result.${r}.body`]),
    ...['succeeded', 'failed', 'rolled_back'].map((r) => `restore.toast.${r}`)
  ];

  it('exist in both languages', () => {
    for (const key of keys) {
      expect(lookup(en as Messages, key), key).toBeTypeOf('string');
      expect(lookup(ru as Messages, key), key).toBeTypeOf('string');
    }
  });

  it('cover every error code the tab can receive', () => {
    const codes = [
      'volumes_unsupported', 'invalid_mode', 'no_volumes', 'unknown_volume', 'not_ready', 'restore_running',
      'volume_mismatch', 'mount_point', 'not_a_dir', 'missing_target', 'shared_volume', 'no_space', 'no_exchange',
      'archive_missing', 'checksum_mismatch', 'workload_busy', 'invalid_archive', 'payload_too_large',
      'confirmation_required', 'forbidden', 'not_found'
    ];
    for (const code of codes) expect(lookup(en as Messages, `errors.${code}`), code).toBeTypeOf('string');
  });
});

describe('upload', () => {
  it('targets the import endpoint of the workload', () => {
    expect(importUrl('wl 1')).toBe('/api/workloads/wl%201/snapshots/import');
  });

  it('parses JSON bodies and keeps anything else as text', () => {
    expect(parseBody('{"error":{"code":"invalid_archive"}}')).toEqual({ error: { code: 'invalid_archive' } });
    expect(parseBody('')).toBeUndefined();
    expect(parseBody('<html>')).toBe('<html>');
  });
});
