"""Built-in trigger kinds, one module per kind."""
