"""The ways in besides the pages: the command line (``python -m core``) and the HTTP API. Like the pages, they
call only :mod:`core.services` (the use cases) and :mod:`core.presentation`."""
