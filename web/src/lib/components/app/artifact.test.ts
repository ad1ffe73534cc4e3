import { describe, expect, it } from 'vitest';
import { artifactLabel } from './artifact';

const id = 'sha256:' + 'ab'.repeat(32);

describe('artifactLabel', () => {
  it('names the image with its digest, shortened', () => {
    expect(artifactLabel({ image: 'web:1.4', digest: `web@${id}`, image_id: 'sha256:ff' })).toBe('web:1.4 @ sha256:abababababab');
  });
  it('takes the local image id when there is no registry digest', () => {
    expect(artifactLabel({ image: 'moorage-test/httpd:1', digest: null, image_id: id })).toBe('moorage-test/httpd:1 @ sha256:abababababab');
  });
  it('drops the digest a promoted image names itself', () => {
    expect(artifactLabel({ image: `web@${id}`, digest: `web@${id}` })).toBe('web @ sha256:abababababab');
    expect(artifactLabel({ image: id, image_id: id })).toBe('sha256:abababababab');
  });
  it('is empty for an artifact without an image', () => {
    expect(artifactLabel({ services: {} })).toBe('');
    expect(artifactLabel(null)).toBe('');
  });
});
