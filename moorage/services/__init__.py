"""Domain operations: validate, change the store, write one audit row. No HTTP here.

Every function takes the open ``Session`` and the acting ``Actor`` and either
completes its change or raises a ``MoorageError`` with nothing written (the
caller's transaction rolls back).
"""
