"""Volume snapshots: the archive format, capture, import and restore."""
