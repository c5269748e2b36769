"""The platform every other package stands on: the typed configuration, the workspace folder, the database
(store and migrations), logging, the machine's hardware and the process plumbing for training on several
processes. Imports nothing else from ``core`` but :mod:`core.presentation`."""
