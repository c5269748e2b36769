"""Classifying a big file as a job on the worker queue, a piece at a time, written to disk as it goes.

A job lives in ``workspace/classify_jobs/<job id>/``: the upload as it came (``input.*``), ``job.json`` (what was
asked and how it stands), then, once a worker has read the file (the *prepare* task), ``pieces/`` with the rows
in pieces of ``classify.job_chunk_rows`` (JSON lines: each row's line number and fields). Every piece is its own
task on the queue, so two workers share one file; a scored piece is written to ``parts/`` under a temporary
name and renamed into place, with a small summary beside it. A part that exists is never scored again, and the
result is put together from the parts in order once all are there: no row is scored twice in the output and
none is lost, even when a worker is killed halfway (the sweep queues again the pieces nobody is scoring). The
file is read as a stream and a worker holds one piece at a time, so memory stays flat whatever the file's size.
Finished jobs are removed after ``classify.job_keep_hours``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any, Callable, Iterable

from core.accounts.auth import Actor
from core.data.ingest import IngestError, read_feedback_file
from core.models.predict import Predictor
from core.platform.config import AppConfig
from core.platform.workspace import Workspace, read_json, write_json_atomic
from core.presentation.exports import results_frame, summarise_results, to_jsonl, to_safe_csv
from core.training.job_states import JobState, JobStopped, checked_job_folder, claim
from core.training.runs import now_iso

JOBS_DIR = "classify_jobs"
JOB_FILE, CANCEL_FILE, PIECES, PARTS, FINISHING = "job.json", "cancel.json", "pieces", "parts", "finishing"
#: Marks a piece a worker is scoring (its age tells a killed worker's piece from a slow one's).
WORKING = ".working"


@dataclass
class FileJob:
    """One file to classify: what was asked, and how far it got."""

    job_id: str
    file_name: str
    text_field: str
    run_id: str
    run_name: str
    #: The serving variant and review threshold it is classified with (decided when it was asked for).
    precision: str
    threshold: float
    created_by: str
    created_at: str
    sheet: str | None = None
    state: JobState = JobState.QUEUED
    stage: str = "waiting for a worker"
    rows: int = 0
    pieces: int = 0
    piece_rows: int = 0
    skipped_lines: int = 0
    problems: list[str] = field(default_factory=list)
    prepared_at: str | None = None
    finished_at: str | None = None
    error: str | None = None
    cancelled_by: str | None = None
    #: When done: rows, scored, not scored, needing review, texts per label (as ``summarise_results``).
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def output_format(self) -> str:
        """JSON lines out for JSON lines in (its rows may differ in fields), CSV for the rest."""
        return "jsonl" if Path(self.file_name).suffix.lower() in (".jsonl", ".ndjson", ".json") else "csv"

    @property
    def result_name(self) -> str:
        return f"{Path(self.file_name).stem}-classified.{self.output_format}"

    @property
    def name(self) -> str:
        """How a person reads it, as a run's name reads: "reviews.csv, sent 25 Nov 14:02" (UTC)."""
        return f"{self.file_name}, sent {datetime.fromisoformat(self.created_at):%d %b %H:%M}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "state": self.state.value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FileJob":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{**{k: v for k, v in data.items() if k in known}, "state": JobState(data["state"])})


@dataclass(frozen=True)
class Progress:
    """A job as a page shows it: the job, the rows scored so far and the estimated seconds left."""

    job: FileJob
    rows_done: int
    eta_s: float | None

    @property
    def fraction(self) -> float:
        if self.job.state is JobState.DONE:
            return 1.0
        return self.rows_done / self.job.rows if self.job.rows else 0.0


class FileJobError(ValueError):
    """A job that cannot be asked for, found or downloaded, said in words."""


# -- where things are ---------------------------------------------------------------------------------------------

def jobs_folder(workspace: Workspace) -> Path:
    return workspace.root / JOBS_DIR


def job_folder(workspace: Workspace, job_id: str) -> Path:
    """The job's folder; an id that is not one of ours is refused (it names a path)."""
    return checked_job_folder(jobs_folder(workspace), job_id, "classify-",
                              lambda bad: FileJobError(f"{bad!r} is not a file job's id"))


def _input(folder: Path) -> Path:
    return next(folder.glob("input.*"))


def _piece(folder: Path, n: int) -> Path:
    return folder / PIECES / f"{n:05d}.jsonl"


def _part(folder: Path, n: int, job: FileJob) -> Path:
    return folder / PARTS / f"{n:05d}.{job.output_format}"


def _part_summary(folder: Path, n: int) -> Path:
    return folder / PARTS / f"{n:05d}.json"


def result_path(workspace: Workspace, job: FileJob) -> Path:
    return job_folder(workspace, job.job_id) / f"result.{job.output_format}"


def save_job(workspace: Workspace, job: FileJob) -> None:
    write_json_atomic(job_folder(workspace, job.job_id) / JOB_FILE, job.to_dict())


def load_job(workspace: Workspace, job_id: str) -> FileJob:
    try:
        return FileJob.from_dict(read_json(job_folder(workspace, job_id) / JOB_FILE))
    except FileNotFoundError:
        raise FileJobError(f"no file job {job_id!r} (finished jobs are removed after a while)") from None


def list_jobs(workspace: Workspace, created_by: str | None = None) -> list[FileJob]:
    """Every job (one person's, if given), newest first."""
    folder = jobs_folder(workspace)
    jobs = []
    for child in folder.iterdir() if folder.is_dir() else []:
        try:
            job = FileJob.from_dict(read_json(child / JOB_FILE))
        except (OSError, ValueError, TypeError, KeyError):
            continue
        if created_by is None or job.created_by == created_by:
            jobs.append(job)
    return sorted(jobs, key=lambda j: j.created_at, reverse=True)


def parts_done(workspace: Workspace, job: FileJob) -> list[int]:
    """The pieces scored so far (their summaries are written last, so a listed piece is complete)."""
    folder = job_folder(workspace, job.job_id) / PARTS
    return sorted(int(p.stem) for p in folder.glob("*.json")) if folder.is_dir() else []


def progress(workspace: Workspace, job: FileJob) -> Progress:
    """Rows scored so far, and the time left at the pace since the file was read."""
    done = parts_done(workspace, job)
    rows = sum(min(job.piece_rows, job.rows - n * job.piece_rows) for n in done)
    eta = None
    if job.state is JobState.RUNNING and job.prepared_at and rows:
        spent = (datetime.now(timezone.utc) - datetime.fromisoformat(job.prepared_at)).total_seconds()
        eta = spent * (job.rows - rows) / rows
    return Progress(job, rows, eta)


# -- asking ------------------------------------------------------------------------------------------------------

def create_job(workspace: Workspace, source: Path | bytes | IO[bytes], file_name: str, text_field: str, run_id: str,
               run_name: str, precision: str, threshold: float, actor: Actor, sheet: str | None = None) -> FileJob:
    """Put the upload (a file on disk, its bytes, or a binary stream) into a new job's folder and write the job, queued (the
    caller queues its reading)."""
    if not text_field:
        raise FileJobError("say which field holds the texts")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    job = FileJob(f"classify-{stamp}-{secrets.token_hex(3)}", Path(file_name).name, text_field, run_id, run_name,
                  precision, threshold, actor.username, now_iso(), sheet)
    folder = job_folder(workspace, job.job_id)
    folder.mkdir(parents=True)
    target = folder / f"input{Path(file_name).suffix.lower()}"
    if isinstance(source, bytes):
        target.write_bytes(source)
    elif isinstance(source, Path):
        shutil.copyfile(source, target)
    else:
        with target.open("wb") as handle:
            shutil.copyfileobj(source, handle)
    save_job(workspace, job)
    return job


def request_cancel(workspace: Workspace, job_id: str, actor: Actor) -> FileJob:
    """Stop a job: nothing more is scored (a piece being scored is finished and left unused)."""
    job = load_job(workspace, job_id)
    if job.state.finished:
        return job
    write_json_atomic(job_folder(workspace, job_id) / CANCEL_FILE, {"by": actor.username, "at": now_iso()})
    job = dataclasses.replace(job, state=JobState.CANCELLED, stage="cancelled", cancelled_by=actor.username,
                              finished_at=now_iso())
    save_job(workspace, job)
    return job


def _cancelled(workspace: Workspace, job_id: str) -> bool:
    return (job_folder(workspace, job_id) / CANCEL_FILE).exists()


# -- the worker's part --------------------------------------------------------------------------------------------

def prepare_job(workspace: Workspace, job_id: str, config: AppConfig, stop: threading.Event) -> FileJob:
    """Read the upload as a stream into pieces on disk; the job then says how many rows and pieces it has (the
    caller queues one task per piece). Read again from the start when a worker was stopped halfway."""
    folder = job_folder(workspace, job_id)
    job = load_job(workspace, job_id)
    if job.prepared_at is not None or job.state.finished or _cancelled(workspace, job_id):
        return job
    staging = folder / f"{PIECES}.{secrets.token_hex(3)}"
    staging.mkdir()
    job = dataclasses.replace(job, state=JobState.RUNNING, stage="reading the file")
    save_job(workspace, job)
    written = 0

    def spill(lines: list[int], records: list[dict[str, Any]]) -> None:
        nonlocal written
        if stop.is_set() or _cancelled(workspace, job_id):
            raise JobStopped("stopped while reading the file")
        if written == 0 and not any(job.text_field in record for record in records):
            raise FileJobError(f"{job.file_name}: no field {job.text_field!r} (its fields: "
                               f"{', '.join(map(str, records[0]))}); pick the field that holds the texts")
        with (staging / f"{written:05d}.jsonl").open("w", encoding="utf-8") as handle:
            handle.writelines(json.dumps({"line": n, "row": r}, ensure_ascii=False, default=str) + "\n"
                              for n, r in zip(lines, records))
        written += 1
        os.utime(folder / JOB_FILE)  # alive: the sweep leaves a file being read alone

    try:
        table = read_feedback_file(_input(folder), config.classify.job_max_file_mb * 1024 * 1024, job.sheet, spill,
                                   config.classify.job_chunk_rows, name=job.file_name)
    except (IngestError, FileJobError) as why:
        shutil.rmtree(staging, ignore_errors=True)
        return _end(workspace, job, JobState.FAILED, str(why))
    except JobStopped:
        shutil.rmtree(staging, ignore_errors=True)
        if stop.is_set():
            save_job(workspace, dataclasses.replace(job, state=JobState.QUEUED, stage="waiting for a worker"))
            raise
        return load_job(workspace, job_id)
    if (folder / PIECES).exists():  # another worker read it too (its task was queued twice): theirs stands
        shutil.rmtree(staging, ignore_errors=True)
        return load_job(workspace, job_id)
    staging.rename(folder / PIECES)
    (folder / PARTS).mkdir(exist_ok=True)
    job = dataclasses.replace(
        job, stage="classifying", rows=table.count, pieces=written, piece_rows=config.classify.job_chunk_rows,
        skipped_lines=table.skipped, prepared_at=now_iso(),
        problems=[f"line {p.line}: {p.message}" for p in table.problems[:20]])
    save_job(workspace, job)
    return job


def _read_piece(folder: Path, n: int) -> tuple[list[int], list[dict[str, Any]]]:
    lines, rows = [], []
    with _piece(folder, n).open(encoding="utf-8") as handle:
        for raw in handle:
            item = json.loads(raw)
            lines.append(item["line"])
            rows.append(item["row"])
    return lines, rows


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(3)}")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


#: What becomes of a piece's predictions once its part is kept: (job, texts, predictions). The services layer
#: logs them for monitoring and queues the least certain for review; training knows nothing of serving.
PieceScored = Callable[[FileJob, list[Any], list[Any]], None]


def classify_piece(workspace: Workspace, job_id: str, n: int, predictor_for: Callable[[FileJob], Predictor],
                   owner: str, on_scored: PieceScored | None = None) -> FileJob:
    """Score piece ``n`` unless it is scored already or the job was cancelled; put the result together when it
    was the last. ``predictor_for(job)`` gives the job's predictor (a worker keeps it between pieces);
    ``on_scored`` is told of the piece's predictions once its part is kept (so at most once per piece)."""
    folder = job_folder(workspace, job_id)
    job = load_job(workspace, job_id)
    if job.state is not JobState.RUNNING or job.prepared_at is None or _cancelled(workspace, job_id):
        return job
    if not _part_summary(folder, n).exists():
        working = folder / PARTS / f"{n:05d}{WORKING}"
        working.write_text(owner, encoding="utf-8")
        started = time.monotonic()
        lines, rows = _read_piece(folder, n)
        predictor = predictor_for(job)
        predictions = predictor.predict([row.get(job.text_field) for row in rows],
                                        lambda done, total: os.utime(working))  # alive: not queued again
        frame = results_frame(rows, predictions, predictor.label_names, lines)
        if job.output_format == "jsonl":
            _write_atomic(_part(folder, n, job), to_jsonl(frame))
        else:
            header, _, body = to_safe_csv(frame).partition("\n")
            _write_atomic(_part(folder, n, job), body)
            _write_atomic(folder / PARTS / "header.csv", header + "\n")
        write_json_atomic(_part_summary(folder, n), {**summarise_results(predictions), "owner": owner,
                                                     "seconds": round(time.monotonic() - started, 3)})
        working.unlink(missing_ok=True)
        if on_scored is not None:
            on_scored(job, [row.get(job.text_field) for row in rows], predictions)
    return finish_if_complete(workspace, job_id)


def finish_if_complete(workspace: Workspace, job_id: str) -> FileJob:
    """Once every piece is scored: the parts put together in order as the result, the pieces removed, the job
    done (by one process; the others leave it)."""
    folder = job_folder(workspace, job_id)
    job = load_job(workspace, job_id)
    if job.state is not JobState.RUNNING or job.prepared_at is None or len(parts_done(workspace, job)) < job.pieces:
        return job
    if not claim(folder / FINISHING):
        return job
    result = result_path(workspace, job)
    temporary = result.with_name(f".{result.name}.partial")
    with temporary.open("wb") as out:
        if job.output_format == "csv" and (folder / PARTS / "header.csv").exists():
            out.write((folder / PARTS / "header.csv").read_bytes())
        for n in range(job.pieces):
            with _part(folder, n, job).open("rb") as part:
                shutil.copyfileobj(part, out)
    os.replace(temporary, result)
    summaries = [read_json(_part_summary(folder, n)) for n in range(job.pieces)]
    shutil.rmtree(folder / PIECES, ignore_errors=True)
    job = load_job(workspace, job_id)
    if job.state is not JobState.RUNNING:  # cancelled while it was being put together
        return job
    job = dataclasses.replace(job, state=JobState.DONE, stage="done", finished_at=now_iso(),
                              summary=_merged(summaries))
    save_job(workspace, job)
    return job


def _merged(summaries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The pieces' summaries as one (counts added; texts per label added label by label)."""
    total: dict[str, Any] = {"rows": 0, "scored": 0, "not_scored": 0, "needs_review": 0, "per_label": {}}
    for summary in summaries:
        for key in ("rows", "scored", "not_scored", "needs_review"):
            total[key] += summary[key]
        for label, count in summary["per_label"].items():
            total["per_label"][label] = total["per_label"].get(label, 0) + count
    total["review_share"] = total["needs_review"] / total["scored"] if total["scored"] else 0.0
    total["per_label"] = dict(sorted(total["per_label"].items(), key=lambda item: -item[1]))
    return total


def _end(workspace: Workspace, job: FileJob, state: JobState, error: str | None = None) -> FileJob:
    job = dataclasses.replace(job, state=state, stage=state.value, error=error, finished_at=now_iso())
    save_job(workspace, job)
    return job


def fail_job(workspace: Workspace, job_id: str, error: str) -> FileJob:
    """A job that cannot go on (its model is gone, a piece cannot be read) says why."""
    return _end(workspace, load_job(workspace, job_id), JobState.FAILED, error)


# -- the sweep ----------------------------------------------------------------------------------------------------

def orphans(workspace: Workspace, queued: set[tuple[str, int | None]], lease_s: float) -> list[tuple[str, int | None]]:
    """What no worker will do unless queued again: a job's reading (``None``) or pieces neither scored, queued
    (``queued``: (job id, piece or None)) nor being scored by a worker that wrote within ``lease_s``."""
    now = time.time()
    found: list[tuple[str, int | None]] = []
    for job in list_jobs(workspace):
        folder = job_folder(workspace, job.job_id)
        if job.state is JobState.QUEUED or (job.state is JobState.RUNNING and job.prepared_at is None):
            fresh = now - (folder / JOB_FILE).stat().st_mtime < lease_s  # being read: it is touched as it goes
            if (job.job_id, None) not in queued and not fresh:
                found.append((job.job_id, None))
        elif job.state is JobState.RUNNING:
            done = set(parts_done(workspace, job))
            for n in range(job.pieces):
                working = folder / PARTS / f"{n:05d}{WORKING}"
                busy = working.exists() and now - working.stat().st_mtime < lease_s
                if n not in done and (job.job_id, n) not in queued and not busy:
                    found.append((job.job_id, n))
            finishing = folder / FINISHING
            if len(done) == job.pieces and (not finishing.exists() or now - finishing.stat().st_mtime > lease_s):
                finishing.unlink(missing_ok=True)  # killed while putting the result together: again
                found.append((job.job_id, job.pieces - 1))
    return found


def remove_expired(workspace: Workspace, keep_hours: float, now: datetime | None = None) -> list[str]:
    """Remove finished jobs (and their results) older than ``keep_hours``; their ids."""
    limit = (now or datetime.now(timezone.utc)) - timedelta(hours=keep_hours)
    removed = []
    for job in list_jobs(workspace):
        if job.state.finished and job.finished_at and datetime.fromisoformat(job.finished_at) < limit:
            shutil.rmtree(job_folder(workspace, job.job_id), ignore_errors=True)
            removed.append(job.job_id)
    return removed
