"""Restore: put a snapshot back onto a workload's live volumes (SPEC section 6).

A restore either leaves every volume exactly as it was, or every restored volume
exactly as in the snapshot, whatever happens; and the data it replaced is kept.

    preflight.py  a request -> one plan per volume, from the CURRENT config; refusals touch nothing
    run.py        RestoreEngine: single-flight, then under the deploy lock: checksum ->
                  staging -> journal -> stop -> swap -> commit -> redeploy the last good artifact
    journal.py    the typed intent record recovery trusts, on disk before the step it describes
    swap.py       RENAME_EXCHANGE or two renames; converge on a wanted inode
    recovery.py   roll back / forward by the inode at each live path; the start-up sweep
    tools.py      RestoreTools: the collaborators the server hands a restore
    pack.py       the replaced data -> a durable pre-restore snapshot -> removed, or kept and named

Nothing here deletes a directory it has not identified by inode, takes a target path
from a manifest, or starts anything but the last successful deployment's artifact.
"""

from moorage.snapshots.restore.run import RestoreEngine
from moorage.snapshots.restore.tools import RestoreTools

__all__ = ["RestoreEngine", "RestoreTools"]
