"""The studio: what every use case acts on (configuration, workspace, database, queue, published model).

One ``Studio`` per process (a server shares it between sessions). A use case is a function
``(studio, caller, …)`` in one of ``core.services``' modules: it checks the caller's role, acts,
and records the audit event — the same for a page, the command line and the HTTP API.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Hashable, Literal

from core.accounts.audit import EventType, record_event
from core.accounts.auth import Actor, Permission, PermissionDenied, command_line_actor, require
from core.platform.config import CONFIG_ENV_VAR, PROJECT_ROOT, WORKSPACE_ENV_VAR, AppConfig, ConfigError, load_config
from core.platform.logs import LOG_FILE, configure_logging
from core.platform.store import Store, default_database_url
from core.platform.workspace import Workspace

if TYPE_CHECKING:
    from core.training.jobs import RunQueue
    from core.serving.runtime import PublishedModel

#: Through which door a call came; kept with its audit event when it is not the app.
Channel = Literal["app", "cli", "api"]
CHANNEL_WORDS = {"app": "app", "cli": "command line", "api": "HTTP API"}
#: Values a studio remembers at most (then it starts afresh).
REMEMBERED_MAX = 256


@dataclass(frozen=True)
class Caller:
    """Who asks (None before signing in), in which sign-in session, through which door."""

    actor: Actor | None
    session_id: str | None = None
    channel: Channel = "app"

    @classmethod
    def command_line(cls) -> "Caller":
        """Whoever has a shell on the server (admin rights: they own the workspace already)."""
        return cls(command_line_actor(), None, "cli")

    def require(self, permission: Permission) -> Actor:
        """The actor, if allowed to do ``permission`` (else PermissionDenied, in words)."""
        return require(self.actor, permission)

    def require_signed_in(self) -> Actor:
        """The actor, whatever their role (else PermissionDenied): for what every account may see."""
        if self.actor is None:
            raise PermissionDenied("sign in first")
        return self.actor

    def require_any(self, *permissions: Permission) -> Actor:
        """The actor, if allowed to do one of ``permissions`` (else PermissionDenied naming the first)."""
        for permission in permissions:
            if self.actor is not None and self.actor.can(permission):
                return self.actor
        return require(self.actor, permissions[0])


class Studio:
    """The shared parts the use cases work with; the job queue and the published model load on first use."""

    def __init__(self, config: AppConfig, workspace: Workspace | None = None, store: Store | None = None) -> None:
        self.config = config
        self.workspace = workspace or config.workspace()
        self.store = store or Store(config.storage.database_url or default_database_url(self.workspace.root))
        self._jobs: RunQueue | None = None
        self._published: PublishedModel | None = None
        self._lock = threading.Lock()
        self._remembered: dict[Hashable, Any] = {}

    def audit(self, caller: Caller, event: EventType, **details: Any) -> None:
        """Record what the caller did (the door too, when it was not the app)."""
        if caller.channel != "app":
            details.setdefault("via", CHANNEL_WORDS[caller.channel])
        record_event(self.store, event, caller.actor, caller.session_id, **details)

    def remembered(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per ``key`` (a key names everything the value depends on, so it never goes
        stale); for figures that cost a model pass, asked for on every request or page run."""
        with self._lock:
            if key in self._remembered:
                return self._remembered[key]
        value = compute()
        with self._lock:
            if len(self._remembered) >= REMEMBERED_MAX:
                self._remembered.clear()
            self._remembered[key] = value
        return value

    @property
    def jobs(self) -> "RunQueue":
        """The training queue the workers take runs from (opened on first use; workers record how runs end)."""
        from core.training.jobs import RunQueue

        with self._lock:
            if self._jobs is None:
                self._jobs = RunQueue(self.workspace, self.config, self.store)
            return self._jobs

    @property
    def published(self) -> "PublishedModel":
        """The published model, loaded once and reloaded when another run is published."""
        from core.serving.runtime import PublishedModel

        with self._lock:
            if self._published is None:
                self._published = PublishedModel(self.workspace, self.config)
            return self._published

    def close(self) -> None:
        """Let go of the queue and the database (runs in progress go on in their workers)."""
        if self._jobs is not None:
            self._jobs.close()
        self.store.dispose()


def start_logging(config: AppConfig) -> None:
    """The rotating system log in the configured workspace's logs folder (``LOG_FILE``), for this process."""
    configure_logging(config.workspace())


__all__ = ["CHANNEL_WORDS", "CONFIG_ENV_VAR", "LOG_FILE", "PROJECT_ROOT", "WORKSPACE_ENV_VAR", "AppConfig", "Caller", "Channel",
           "ConfigError", "Studio", "load_config", "start_logging"]
