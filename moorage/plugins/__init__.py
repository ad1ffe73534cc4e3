"""Extension points: the Protocols in ``spec`` and the entry-point ``registry``."""
