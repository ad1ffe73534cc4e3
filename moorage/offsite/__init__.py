"""Off-site copies of snapshots (SPEC section 11): what a target holds and how it is
laid out (``layout``), which copies a target keeps (``retention``), the streamed
encrypt-upload, verify and fetch (``transfer``), and the worker that copies every ready
snapshot of a workload with a policy (``copier``)."""
