"""The HTTP API: classify from other systems with a personal API token (FastAPI; docs at ``/docs``).

Every endpoint calls the same use cases as the Classify page (``core.services``), so API calls land in the
session log ("via HTTP API") and in Admin › Monitoring. Errors are JSON ``{"error": "…"}`` with a 4xx status
that says what is wrong and where (``body.texts.3: …``).
"""

from typing import Annotated

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from core.services import Caller, Studio
from core.services.studio import load_config
from core.services.accounts import PermissionDenied
from core.services.classification import (
    FeedbackError, NothingPublished, UnknownModel, classify, give_feedback, model_that_classified, review_threshold,
    serving_run,
)
from core.services.file_jobs import (
    FileJobError, JobState, Progress, cancel_file_job, classify_file_later, file_job, file_job_result,
)
from core.services.publishing import publication as current_publication
from core.services.runs import RunRecord
from core.services.tokens import TokenRefused, api_caller

VERSION = "1"


class ApiError(Exception):
    """A refusal with its HTTP status and a message in words."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class ClassifyRequest(BaseModel):
    texts: list[str] = Field(min_length=1, description="The feedback texts to classify (at most api.max_texts).",
                             examples=[["My parcel arrived two weeks late."]])
    threshold: float | None = Field(None, ge=0.0, le=1.0, description="Flag predictions less confident than "
                                    "this for review; default: the published run's suggested threshold.")


class ScoredText(BaseModel):
    status: str = Field(description="ok, empty (nothing to classify) or not_text")
    label: str | None = Field(description="The label; from a tagger, its tags joined by '; '")
    labels: list[str] | None = Field(None, description="A tagger's tags (none, one or several; absent from a model "
                                                        "that gives one label)")
    score: float | None = Field(description="The top label's probability; from a tagger, the certainty of its "
                                            "least certain tag decision")
    scores: dict[str, float] = Field(description="Every label's (or tag's) probability")
    needs_review: bool = Field(description="Below the review threshold: a person should check it")
    truncated: bool = Field(description="Longer than the model reads; only its beginning was used")
    message: str


class ModelSummary(BaseModel):
    run_id: str
    name: str = Field(description="The run as people read it: model, time, dataset version")


class ClassifyResponse(BaseModel):
    model: ModelSummary
    threshold: float
    predictions: list[ScoredText]


class ModelInfo(ModelSummary):
    kind: str
    labels: list[str]
    dataset: str
    published_at: str | None
    test_accuracy: float | None
    test_macro_f1: float | None
    review_threshold: float
    review_threshold_note: str


class FeedbackRequest(BaseModel):
    text: str = Field(min_length=1, max_length=100_000)
    predicted: str = Field(description="The label the model gave (a tagger's tags joined by '; ')")
    correct_label: str = Field(description="The right label (the predicted one when the model was right); for a "
                                           "tagger, the right tags joined by '; '")
    score: float | None = Field(None, ge=0.0, le=1.0)
    run_id: str | None = Field(None, description="The run that predicted it; default: the published one")


class FeedbackResponse(BaseModel):
    id: int
    correct: bool
    status: str


class JobInfo(BaseModel):
    id: str
    file: str
    state: str = Field(description="queued, running, done, failed or cancelled")
    stage: str = Field(description="What it is doing, in words")
    rows: int = Field(description="Rows in the file (0 until a worker has read it)")
    rows_done: int
    fraction: float
    eta_s: float | None = Field(description="Seconds left at the pace so far")
    model: ModelSummary
    threshold: float
    created_at: str
    finished_at: str | None
    error: str | None
    summary: dict = Field(description="When done: rows, scored, not_scored, needs_review, per_label")
    result: str | None = Field(description="Where to download the result once done")


def _job_info(progress: Progress) -> JobInfo:
    job = progress.job
    return JobInfo(id=job.job_id, file=job.file_name, state=job.state.value, stage=job.stage, rows=job.rows,
                   rows_done=progress.rows_done, fraction=round(progress.fraction, 4), eta_s=progress.eta_s,
                   model=ModelSummary(run_id=job.run_id, name=job.run_name), threshold=job.threshold,
                   created_at=job.created_at, finished_at=job.finished_at, error=job.error, summary=job.summary,
                   result=f"/v1/jobs/{job.job_id}/result" if job.state is JobState.DONE else None)


def _summary(record: RunRecord) -> ModelSummary:
    return ModelSummary(run_id=record.run_id, name=record.name)


def _where(location: tuple) -> str:
    return ".".join(str(part) for part in location)


def create_app(studio: Studio) -> FastAPI:
    """The API over one studio (tests pass their own; ``python -m core api`` the configured one)."""
    limits = studio.config.api
    app = FastAPI(title="Feedback Studio API", version=VERSION,
                  description="Classify customer feedback with the published model. Send a personal API token "
                              "(created by an admin on the Admin page) as `Authorization: Bearer fs_…`.")
    bearer = HTTPBearer(auto_error=False, description="A personal API token: fs_…")

    def caller(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Caller:
        try:
            return api_caller(studio, credentials.credentials if credentials else None)
        except TokenRefused as refusal:
            raise ApiError(401, str(refusal)) from None

    Signed = Annotated[Caller, Depends(caller)]

    @app.middleware("http")
    async def body_limit(request: Request, call_next):
        """Refuse an oversized body from its declared length, before reading it."""
        if request.method in ("POST", "PUT", "PATCH"):
            length = request.headers.get("content-length")
            if length is None:
                return JSONResponse({"error": "send the body with a Content-Length header"}, 411)
            largest = (studio.config.classify.job_max_file_mb if request.url.path == "/v1/jobs"
                       else limits.max_body_mb)
            if not length.isdigit() or int(length) > largest * 1_000_000:
                return JSONResponse({"error": f"the body is larger than {largest:g} MB; send the texts "
                                              "in several requests"}, 413)
        return await call_next(request)

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, error: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return JSONResponse({"error": error.message}, error.status, headers=headers)

    @app.exception_handler(PermissionDenied)
    async def denied(_request: Request, error: PermissionDenied) -> JSONResponse:
        return JSONResponse({"error": f"this token may not do that: {error}"}, 403)

    @app.exception_handler(NothingPublished)
    async def unpublished(_request: Request, error: NothingPublished) -> JSONResponse:
        return JSONResponse({"error": str(error)}, 409)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [f"{_where(item['loc'])}: {item['msg']}" for item in error.errors()]
        return JSONResponse({"error": "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)"
                                                                  if len(problems) > 5 else "")}, 422)

    @app.post("/v1/classify", response_model=ClassifyResponse, summary="Classify texts with the published model")
    def classify_texts(body: ClassifyRequest, who: Signed) -> ClassifyResponse:
        if len(body.texts) > limits.max_texts:
            raise ApiError(422, f"body.texts: at most {limits.max_texts:,} texts per request, got "
                                f"{len(body.texts):,}; send them in several requests")
        done = classify(studio, who, body.texts, body.threshold,
                        file_name=None if len(body.texts) == 1 else "API request")
        return ClassifyResponse(model=_summary(done.record), threshold=done.threshold,
                                predictions=[ScoredText(**p.to_dict()) for p in done.predictions])

    @app.get("/v1/model", response_model=ModelInfo, summary="The published model: labels, scores, threshold")
    def model(who: Signed) -> ModelInfo:
        record = serving_run(studio, who)
        if record is None:
            raise NothingPublished()
        publication = current_publication(studio, who)
        threshold = review_threshold(studio, record)
        metrics = record.test_metrics or {}
        return ModelInfo(**_summary(record).model_dump(), kind=record.kind, labels=record.labels,
                         dataset=record.dataset_ref, test_accuracy=metrics.get("accuracy"),
                         published_at=publication.published_at if publication else None,
                         test_macro_f1=metrics.get("macro_f1"), review_threshold=threshold.value,
                         review_threshold_note=threshold.note)

    @app.post("/v1/feedback", response_model=FeedbackResponse, status_code=201,
              summary="Say whether a prediction was right, and if not what it should have been")
    def feedback(body: FeedbackRequest, who: Signed) -> FeedbackResponse:
        try:
            record = model_that_classified(studio, who, body.run_id)
        except UnknownModel as unknown:
            raise ApiError(404, f"body.run_id: {unknown}") from None
        try:
            item = give_feedback(studio, who, record, body.text, body.predicted, body.score, body.correct_label)
        except FeedbackError as refusal:
            raise ApiError(422, str(refusal)) from None
        return FeedbackResponse(id=item.id, correct=item.is_correct, status=item.status)

    @app.post("/v1/jobs", response_model=JobInfo, status_code=202,
              summary="Classify a whole file (CSV, JSONL, Excel, text) in the background; follow it at /v1/jobs/{id}")
    def start_job(who: Signed, file: Annotated[UploadFile, File(description="The file to classify")],
                  text_field: Annotated[str, Form(description="The field that holds the texts")],
                  threshold: Annotated[float | None, Form(ge=0.0, le=1.0)] = None) -> JobInfo:
        try:
            job = classify_file_later(studio, who, file.file, file.filename or "upload.csv", text_field, threshold)
        except FileJobError as refusal:
            raise ApiError(422, str(refusal)) from None
        return _job_info(file_job(studio, who, job.job_id))

    def _job(who: Caller, job_id: str) -> Progress:
        try:
            return file_job(studio, who, job_id)
        except FileJobError as unknown:
            raise ApiError(404, str(unknown)) from None

    @app.get("/v1/jobs/{job_id}", response_model=JobInfo, summary="A file job: its state, progress and time left")
    def follow_job(job_id: str, who: Signed) -> JobInfo:
        return _job_info(_job(who, job_id))

    @app.get("/v1/jobs/{job_id}/result", summary="A finished file job's result: the file's rows and their labels",
             response_class=FileResponse)
    def job_result(job_id: str, who: Signed) -> FileResponse:
        progress = _job(who, job_id)
        if progress.job.state is not JobState.DONE:
            raise ApiError(409, f"the job is {progress.job.state.value}: its result is there once it is done")
        path, name = file_job_result(studio, who, job_id)
        return FileResponse(path, filename=name)

    @app.delete("/v1/jobs/{job_id}", response_model=JobInfo, summary="Cancel a file job")
    def cancel_job(job_id: str, who: Signed) -> JobInfo:
        _job(who, job_id)
        cancel_file_job(studio, who, job_id)
        return _job_info(_job(who, job_id))

    return app


def from_environment() -> FastAPI:
    """The API over the studio the environment names (``FEEDBACK_STUDIO_CONFIG``, ``FEEDBACK_STUDIO_WORKSPACE``):
    what each process of ``python -m core api --workers N`` serves."""
    return create_app(Studio(load_config()))
