// Upload an archive as the raw request body with XMLHttpRequest, because fetch cannot
// report upload progress. Errors come back as ApiError like every other call.
import { ApiError, csrf, toApiError, type Snapshot } from '$lib/api/client';

export type UploadProgress = { loaded: number; total: number };

export function importUrl(workloadId: string): string {
  return `/api/workloads/${encodeURIComponent(workloadId)}/snapshots/import`;
}

/** Parse a response body that should be JSON; anything else is kept as text. */
export function parseBody(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function uploadArchive(
  workloadId: string,
  file: Blob,
  onProgress: (p: UploadProgress) => void,
  signal?: AbortSignal
): Promise<Snapshot> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', importUrl(workloadId));
    xhr.setRequestHeader('Content-Type', 'application/zstd');
    const token = csrf();
    if (token) xhr.setRequestHeader('X-CSRF-Token', token);
    xhr.upload.onprogress = (e) => onProgress({ loaded: e.loaded, total: e.lengthComputable ? e.total : file.size });
    xhr.onload = async () => {
      const body = parseBody(xhr.responseText);
      if (xhr.status >= 200 && xhr.status < 300) resolve(body as Snapshot);
      else reject(await toApiError(new Response(null, { status: xhr.status }), body));
    };
    xhr.onerror = () => reject(new ApiError(0, 'network', 'upload failed'));
    xhr.onabort = () => reject(new ApiError(0, 'aborted', 'upload cancelled'));
    signal?.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.send(file);
  });
}
