// An app's deployments, for the parts of its page that draw on them (its URLs, its history).
import { api, unwrap, type Deployment, type Workload } from '$lib/api/client';

/** Changes only when a deployment starts or ends: refetch on it, not on every poll of the app. */
export function deploymentsKey(w: Workload): string {
  return `${w.id}:${w.last_deployment?.id ?? ''}:${w.last_deployment?.status ?? ''}`;
}

/** The app's deployments, newest first; [] when they cannot be read (the picture is left out). */
export async function listDeployments(workloadId: string): Promise<Deployment[]> {
  try {
    const out = await unwrap(api.GET('/api/workloads/{workload_id}/deployments', { params: { path: { workload_id: workloadId } } }));
    return out.items;
  } catch {
    return [];
  }
}
