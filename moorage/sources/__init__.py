"""Built-in source kinds, one package per kind (``image``, ``compose``); ``stage`` holds
what they name and label alike, ``policy`` the table of host powers both are judged by."""
