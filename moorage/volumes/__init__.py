"""Volume specs and the pure rules that map them to host paths."""
