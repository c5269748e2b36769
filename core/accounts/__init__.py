"""Who may do what: accounts and roles, sign-in sessions, API tokens and the audit log of events.
May import :mod:`core.platform` and :mod:`core.presentation`."""
