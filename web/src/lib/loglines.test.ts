import { describe, expect, it } from 'vitest';
import en from './i18n/en.json';
import ru from './i18n/ru.json';
import { localizeLog, localizeText } from './loglines';
import type { Messages } from './i18n/translate';

const EN = en as Messages;
const RU = ru as Messages;

describe('deployment logs in the reader language', () => {
  it('leaves English as it is', () => {
    const log = '10:00:00 deploy succeeded\n';
    expect(localizeLog(log, EN, EN)).toBe(log);
  });

  it('translates every template, keeping the stamp and the values read from the line', () => {
    const log = [
      '10:00:00 deploying image workload web (manual)',
      '10:00:01 started the previous container moorage-p-production-web-1 again',
      '10:00:02 removed moorage-p-production-web-2',
      '10:00:03 health: still waiting, 10 s of 60 s (HTTP 404 on /)',
      '10:00:04 reconcile: unpaused web-1',
      ''
    ].join('\n');
    expect(localizeLog(log, EN, RU).split('\n')).toEqual([
      '10:00:00 развёртывание приложения web (тип image; manual)',
      '10:00:01 прежний контейнер moorage-p-production-web-1 запущен снова',
      '10:00:02 удалён moorage-p-production-web-2',
      '10:00:03 проверка готовности: ждём, прошло 10 с из 60 с (HTTP 404 on /)',
      '10:00:04 reconcile: web-1 снят с паузы',
      ''
    ]);
  });

  it('shows a line no template knows as written, and survives odd text', () => {
    const log = '10:00:00 abc123 Pull complete\nno stamp here\n10:00:01 removed {x} $& (\\d)';
    expect(localizeLog(log, EN, RU)).toBe(
      '10:00:00 abc123 Pull complete\nno stamp here\n10:00:01 удалён {x} $& (\\d)'
    );
  });

  it('reads a reason inside a line, and an error on its own', () => {
    const log = '10:00:05 deploy failed: not healthy after 8 s: GET /missing answered 404';
    expect(localizeLog(log, EN, RU)).toBe(
      '10:00:05 развёртывание не удалось: не стал исправным за 8 с: GET /missing ответил 404'
    );
    expect(localizeText('the container exited (exit code 1)', EN, RU)).toBe('контейнер exited (код выхода 1)');
    expect(localizeText('something no template knows', EN, RU)).toBe('something no template knows');
    // The app's own output is data: never read as one of Moorage's lines.
    expect(localizeText('the container exited (exit code 1); its last output: started worker pool', EN, RU)).toBe(
      'контейнер exited (код выхода 1); последний вывод: started worker pool'
    );
    expect(localizeText('not healthy after 8 s', EN, EN)).toBe('not healthy after 8 s');
  });

  it('has a Russian template for every English one', () => {
    expect(Object.keys(RU.loglines as object).sort()).toEqual(Object.keys(EN.loglines as object).sort());
  });
});
