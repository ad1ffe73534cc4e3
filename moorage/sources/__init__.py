"""Built-in source kinds, one module per kind."""
