import { describe, expect, it } from 'vitest';
import {
  canConfirm,
  enterConfirms,
  isFinished,
  isPacked,
  nextPoll,
  phaseKey,
  progressPercent,
  runningOf,
  stepOf,
  STEPS,
  MAX_PACKING_POLLS,
  type RestoreState
} from './restore';
import en from './i18n/en.json';
import ru from './i18n/ru.json';
import { lookup, type Messages } from './i18n/translate';

const NAME = 'web-app';

describe('the typed confirmation', () => {
  it('is refused when empty', () => {
    expect(canConfirm('', NAME)).toBe(false);
  });

  it('is refused while partial', () => {
    expect(canConfirm('web', NAME)).toBe(false);
    expect(canConfirm('web-ap', NAME)).toBe(false);
  });

  it('is refused when only the case differs', () => {
    expect(canConfirm('WEB-APP', NAME)).toBe(false);
    expect(canConfirm('Web-app', NAME)).toBe(false);
  });

  it('is refused with extra whitespace: nothing is trimmed', () => {
    expect(canConfirm(' web-app', NAME)).toBe(false);
    expect(canConfirm('web-app ', NAME)).toBe(false);
    expect(canConfirm('web-app\n', NAME)).toBe(false);
    expect(canConfirm('web app', NAME)).toBe(false);
  });

  it('is refused when longer than the name', () => {
    expect(canConfirm('web-app2', NAME)).toBe(false);
  });

  it('is accepted on an exact match', () => {
    expect(canConfirm('web-app', NAME)).toBe(true);
  });

  it('never matches an empty name', () => {
    expect(canConfirm('', '')).toBe(false);
  });
});

describe('Enter in the confirmation input', () => {
  const enter = { key: 'Enter' };

  it('confirms only when the text matches', () => {
    expect(enterConfirms(enter, NAME, NAME)).toBe(true);
    expect(enterConfirms(enter, '', NAME)).toBe(false);
    expect(enterConfirms(enter, 'web', NAME)).toBe(false);
    expect(enterConfirms(enter, 'WEB-APP', NAME)).toBe(false);
    expect(enterConfirms(enter, `${NAME} `, NAME)).toBe(false);
  });

  it('ignores other keys', () => {
    expect(enterConfirms({ key: 'a' }, NAME, NAME)).toBe(false);
    expect(enterConfirms({ key: 'Escape' }, NAME, NAME)).toBe(false);
    expect(enterConfirms({ key: 'Tab' }, NAME, NAME)).toBe(false);
  });

  it('ignores Enter while an input method is composing', () => {
    expect(enterConfirms({ key: 'Enter', isComposing: true }, NAME, NAME)).toBe(false);
  });

  it('ignores Enter with a modifier', () => {
    for (const mod of ['shiftKey', 'altKey', 'ctrlKey', 'metaKey']) {
      expect(enterConfirms({ key: 'Enter', [mod]: true }, NAME, NAME)).toBe(false);
    }
  });
});

describe('phases', () => {
  it('have a translation key in both languages, unknown ones a generic one', () => {
    for (const phase of ['queued', 'verify', 'extract', 'quiesce', 'swap', 'redeploy', 'done', 'warp']) {
      const key = phaseKey(phase);
      expect(lookup(en as Messages, key), key).toBeTypeOf('string');
      expect(lookup(ru as Messages, key), key).toBeTypeOf('string');
    }
    expect(phaseKey('warp')).toBe('restore.phase.unknown');
    expect(phaseKey('swap')).toBe('restore.phase.swap');
  });

  it('are numbered as steps, except done and unknown ones', () => {
    expect(stepOf('queued')).toBe(1);
    expect(stepOf('redeploy')).toBe(STEPS.length);
    expect(stepOf('done')).toBeNull();
    expect(stepOf('warp')).toBeNull();
  });
});

describe('a restore', () => {
  const base: RestoreState = {
    status: 'running',
    phase: 'queued',
    progress_bytes: 0,
    total_bytes: 1000,
    pre_restore_snapshot_id: null,
    kept_paths: []
  };

  it('is finished once it no longer runs', () => {
    expect(isFinished('running')).toBe(false);
    for (const s of ['succeeded', 'failed', 'rolled_back']) expect(isFinished(s)).toBe(true);
  });

  it('reports progress from the extracted bytes', () => {
    expect(progressPercent(base)).toBe(0);
    expect(progressPercent({ ...base, phase: 'extract', progress_bytes: 250 })).toBe(25);
    expect(progressPercent({ ...base, phase: 'extract', progress_bytes: 5000 })).toBe(100);
    expect(progressPercent({ ...base, phase: 'swap', progress_bytes: 0 })).toBe(100);
    expect(progressPercent({ ...base, status: 'failed', phase: 'done' })).toBe(100);
  });

  it('has an indeterminate bar while extracting an empty archive', () => {
    expect(progressPercent({ ...base, total_bytes: 0, phase: 'extract' })).toBeNull();
    expect(progressPercent({ ...base, total_bytes: 0, phase: 'verify' })).toBe(0);
    expect(progressPercent({ ...base, total_bytes: 0, phase: 'redeploy' })).toBe(100);
  });

  it('is polled every second while it runs', () => {
    expect(nextPoll(base, 0)).toBe(1000);
  });

  it('is polled a while after success until the pre-restore snapshot is known', () => {
    const done: RestoreState = { ...base, status: 'succeeded', phase: 'done' };
    expect(nextPoll(done, 0)).toBe(2000);
    expect(nextPoll(done, MAX_PACKING_POLLS)).toBeNull();
    expect(nextPoll({ ...done, pre_restore_snapshot_id: 'sn_1' }, 0)).toBeNull();
  });

  it('stops being polled once the replaced data is kept on disk instead', () => {
    const done: RestoreState = { ...base, status: 'succeeded', phase: 'done' };
    const kept = { ...done, kept_paths: ['/var/v/.moorage-restore-rs_1-data.new'] };
    expect(isPacked(done)).toBe(false);
    expect(isPacked(kept)).toBe(true);
    expect(isPacked({ ...kept, pre_restore_snapshot_id: 'sn_1' })).toBe(true);
    expect(nextPoll(kept, 0)).toBeNull();
  });

  it('is not polled after failure or rollback', () => {
    expect(nextPoll({ ...base, status: 'failed', phase: 'done' }, 0)).toBeNull();
    expect(nextPoll({ ...base, status: 'rolled_back', phase: 'done' }, 0)).toBeNull();
  });

  it('is found running in a list', () => {
    const list = [{ id: 'a', status: 'failed' }, { id: 'b', status: 'running' }];
    expect(runningOf(list)?.id).toBe('b');
    expect(runningOf([{ id: 'a', status: 'succeeded' }])).toBeUndefined();
  });
});
