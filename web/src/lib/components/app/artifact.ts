// What a deployment ran, as a person names it: the image with a short digest, never a bare id.

const short = (d: string): string => d.replace(/^(sha256:[0-9a-f]{12})[0-9a-f]*$/, '$1');

/** "web:1.4 @ sha256:3fa9bcc1d2e4" from an artifact's image and digest (or local image id);
 * '' when the artifact names no image. */
export function artifactLabel(artifact: Record<string, unknown> | null | undefined): string {
  const image = typeof artifact?.image === 'string' ? artifact.image : '';
  const digest = typeof artifact?.digest === 'string' && artifact.digest ? artifact.digest : '';
  const id = typeof artifact?.image_id === 'string' ? artifact.image_id : '';
  const pin = (digest.split('@')[1] ?? digest) || id;
  // A promoted config names the digest itself: its name is the part before the @.
  const name = image.startsWith('sha256:') ? '' : image.split('@')[0];
  if (!name) return pin ? short(pin) : '';
  return pin ? `${name} @ ${short(pin)}` : name;
}
