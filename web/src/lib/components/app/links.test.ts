import { describe, expect, it } from 'vitest';
import { publishedUrls } from './links';

describe('publishedUrls', () => {
  it('lists the http urls of an artifact', () => {
    expect(publishedUrls({ urls: ['http://127.0.0.1:8080/'] }, 'h')).toEqual(['http://127.0.0.1:8080/']);
  });
  it('puts the page host for an all-interfaces address', () => {
    expect(publishedUrls({ urls: ['http://0.0.0.0:81/', 'http://[::]:82/'] }, 'box.lan')).toEqual([
      'http://box.lan:81/',
      'http://box.lan:82/'
    ]);
  });
  it('ignores what is not a url', () => {
    expect(publishedUrls({ urls: ['javascript:alert(1)', 3] }, 'h')).toEqual([]);
    expect(publishedUrls({}, 'h')).toEqual([]);
    expect(publishedUrls(null, 'h')).toEqual([]);
  });
});
