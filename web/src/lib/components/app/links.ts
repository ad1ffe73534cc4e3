// Where a deployed app answers: the `urls` its kind wrote into the deployment's artifact.

/** The http URLs an artifact names, with an all-interfaces address (0.0.0.0, ::) put as the
 * host the UI itself was reached at, so the link works from this browser. */
export function publishedUrls(artifact: Record<string, unknown> | null | undefined, pageHost: string): string[] {
  const urls = artifact?.urls;
  if (!Array.isArray(urls)) return [];
  return urls
    .filter((u): u is string => typeof u === 'string' && /^https?:\/\//.test(u))
    .map((u) => u.replace(/^(https?:\/\/)(0\.0\.0\.0|\[::\])(?=:|\/|$)/, `$1${pageHost}`));
}
