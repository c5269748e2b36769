"""Where queued training runs wait: a Huey queue on SQLite (embedded) or on the PostgreSQL database.

Huey (a maintained task queue) was chosen because it is the one that keeps its queue in both of the
databases the studio runs on, with no broker to deploy: SQLite in the workspace for ``make run``, and
the same PostgreSQL the servers share (its PostgreSQL storage, on psycopg 3, which the store already
uses), where ``FOR UPDATE SKIP LOCKED`` hands each queued run to exactly one worker and LISTEN/NOTIFY
wakes an idle one at once. (procrastinate needs PostgreSQL even on a laptop; Dramatiq and RQ need Redis
or RabbitMQ.)

The queue carries only run ids. Everything about a run — its spec, state, progress, heartbeat and
the request to cancel it — lives in its folder in the shared workspace (``core.training.runs``), so the queue
losing a task never loses a run: a worker sweeping the workspace queues such an orphan again.
"""

from __future__ import annotations

from typing import Callable

from huey import Huey, PostgresHuey, SqliteHuey

from core.platform.config import AppConfig, ConfigError
from core.platform.workspace import Workspace

QUEUE_NAME = "feedback-studio-training"
QUEUE_FILE = "queue.db"
TASK_NAME = "train_run"
TOPICS_TASK_NAME = "discover_topics"
FILE_READ_TASK_NAME, FILE_PIECE_TASK_NAME = "read_file_job", "classify_file_piece"

TrainTask = Callable[[str], None]


def _not_here(job_id: str) -> None:
    """The app and the command line only put runs and jobs on the queue; doing them is a worker's job."""
    raise RuntimeError(f"{job_id} was handed to a process that is not a worker")


def libpq_url(database_url: str) -> str:
    """Huey's PostgreSQL storage takes a libpq URL: the same database, without SQLAlchemy's driver suffix."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    return url.set(drivername=url.get_backend_name()).render_as_string(hide_password=False)


def queue_url(config: AppConfig) -> str:
    """The configured queue, else the PostgreSQL database when the studio runs on one ('' = SQLite file)."""
    if config.worker.queue_url:
        return config.worker.queue_url
    database = config.storage.database_url
    return database if database.startswith("postgresql") else ""


def open_queue(config: AppConfig, workspace: Workspace, train: TrainTask | None = None) -> tuple[Huey, Callable]:
    """The queue and its one task (``task(run_id)`` queues a run); ``train`` runs it, in a worker only."""
    url = queue_url(config)
    if url.startswith("sqlite:///"):
        huey: Huey = SqliteHuey(QUEUE_NAME, filename=url.removeprefix("sqlite:///"), results=False, utc=True)
    elif url.startswith("postgresql"):
        huey = PostgresHuey(QUEUE_NAME, dsn=libpq_url(url), results=False, utc=True)
    elif url:
        raise ConfigError(f"worker.queue_url must be a sqlite:/// or postgresql:// URL, got {url!r}")
    else:
        huey = SqliteHuey(QUEUE_NAME, filename=str(workspace.root / QUEUE_FILE), results=False, utc=True)
    def train_run(run_id: str) -> None:
        """The one task (Huey names a task after its function's module: this one's, in every process)."""
        (train or _not_here)(run_id)

    return huey, huey.task(name=TASK_NAME)(train_run)


def topics_task(huey: Huey, discover: TrainTask | None = None) -> Callable:
    """The queue's second task: ``task(job_id)`` queues a topic discovery (core.training.topic_jobs); ``discover``
    runs it, in a worker only."""
    def discover_topics(job_id: str) -> None:
        (discover or _not_here)(job_id)

    return huey.task(name=TOPICS_TASK_NAME)(discover_topics)


def file_tasks(huey: Huey, read: TrainTask | None = None,
               classify: Callable[[str, int], None] | None = None) -> tuple[Callable, Callable]:
    """The queue's tasks for classifying a file (core.training.file_jobs): ``read(job_id)`` reads it into pieces,
    ``classify(job_id, piece)`` scores one piece; both run in a worker only."""
    def read_file_job(job_id: str) -> None:
        (read or _not_here)(job_id)

    def classify_file_piece(job_id: str, piece: int) -> None:
        (classify or (lambda job, _: _not_here(job)))(job_id, piece)

    return huey.task(name=FILE_READ_TASK_NAME)(read_file_job), huey.task(name=FILE_PIECE_TASK_NAME)(classify_file_piece)


def queued_file_tasks(huey: Huey) -> set[tuple[str, int | None]]:
    """The file jobs' tasks waiting on the queue: (job id, piece), piece None for the reading."""
    return {(str(task.args[0]), int(task.args[1]) if task.name == FILE_PIECE_TASK_NAME else None)
            for task in huey.pending() if task.name in (FILE_READ_TASK_NAME, FILE_PIECE_TASK_NAME) and task.args}


def queued_run_ids(huey: Huey) -> list[str]:
    """The runs waiting on the queue, oldest first (a run queued twice shows twice)."""
    return [str(task.args[0]) for task in huey.pending() if task.name == TASK_NAME and task.args]
