"""Dagster's runs as the API sees them: launch a report run, look a run up, over the webserver's
GraphQL endpoint.

One path to Dagster: plain GraphQL over one `httpx.Client` (pooled connections, a timeout on
every call). A failure to get an answer (refused, reset, timed out; an HTTP error or a body
that is not GraphQL's) is recognised by its exception type and becomes `DagsterUnavailable`
(the API's 503); an answer that refuses the request (no such job, invalid config) becomes
`DagsterRefused` (502). Runs that have ended are remembered (`FinishedRuns`): a finished run
never changes, so polls of a finished report do not ask Dagster again.
"""

from __future__ import annotations

import functools
import re
import ssl
import threading
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

import httpx

from storemon_assets.core.instants import as_of_instant
from storemon_assets.names import (
    API_TAG,
    AS_OF_REPORT_JOB,
    AS_OF_REPORT_OP,
    AS_OF_TAG,
    DATA_WARNING_LABEL,
    REPORT_JOB,
)

MAX_EVENT_PAGES = 50  # of a run's events read by one look-up: 50,000 at Dagster's default page
RUNNING_STATES = {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "MANAGED", "CANCELING"}
FAILED_STATES = {"FAILURE", "CANCELED"}
FINISHED_STATES = FAILED_STATES | {"SUCCESS"}
DAGSTER_TIMEOUT_SECONDS = 10

REPOSITORIES_QUERY = """
query StoremonRepositories {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection { nodes { name location { name } pipelines { name } } }
    ... on PythonError { message }
  }
}
"""

LAUNCH_MUTATION = """
mutation StoremonLaunch($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { stepKey invalidOutputName }
    ... on Error { message }
  }
}
"""

RUNS_BY_TAG_QUERY = """
query StoremonRunsByTag($filter: RunsFilter!) {
  runsOrError(filter: $filter, limit: 1) {
    __typename
    ... on Runs { results { runId } }
    ... on PythonError { message }
  }
}
"""

RUN_QUERY = """
query StoremonRun($runId: ID!, $afterCursor: String) {
  runOrError(runId: $runId) {
    __typename
    ... on Run {
      jobName
      status
      eventConnection(afterCursor: $afterCursor) {
        cursor
        hasMore
        events {
          __typename
          ... on ExecutionStepFailureEvent { error { message cause { message cause { message } } } }
          ... on RunFailureEvent { message }
          ... on RunCanceledEvent { message }
          ... on DisplayableEvent { metadataEntries { label ... on TextMetadataEntry { text } } }
        }
      }
    }
    ... on RunNotFoundError { message }
    ... on PythonError { message }
  }
}
"""


class DagsterUnavailable(RuntimeError):
    """Dagster could not be reached, or did not answer in time (or not in GraphQL)."""


class LaunchUnconfirmed(DagsterUnavailable):
    """The launch was sent but not answered: Dagster may have created the run."""


class DagsterRefused(RuntimeError):
    """Dagster answered, and refused the request: `kind` is its error type (e.g. JobNotFoundError)."""

    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind} {message}")
        self.kind = kind


@dataclass(frozen=True)
class RunInfo:
    job_name: str
    status: str
    error: str | None
    warning: str | None = None  # the report's stale-data or no-data warning (data_warning)


class ReportRuns(Protocol):
    """What the API needs from Dagster: launch a report run, look a run up, find one by its tags."""

    def launch_report(self, as_of: str | None, tags: dict[str, str] | None = None) -> str:
        """Start a report run (T = `as_of`, or the default) with these extra tags; return its id."""
        ...

    def run_info(self, run_id: str) -> RunInfo | None:
        """The run's job, status and failure reason; None if Dagster has no such run."""
        ...

    def find_run(self, tags: dict[str, str], statuses: Collection[str] | None) -> str | None:
        """The id of the newest run carrying all these tags (in one of `statuses`, if given), or None."""
        ...


def report_run_request(as_of: str | None, extra_tags: dict[str, str] | None = None) -> tuple[str, dict, dict[str, str]]:
    """The job, run config and tags of a report run: the current report (REPORT_JOB), or with
    `as_of` an as-of report (AS_OF_REPORT_JOB), its T fixed at this moment ('now' included) and
    named in a run tag."""
    tags = {**(extra_tags or {}), API_TAG: "trigger_report"}
    if not as_of:
        return REPORT_JOB, {}, tags
    instant = as_of_instant(as_of)
    return AS_OF_REPORT_JOB, {"ops": {AS_OF_REPORT_OP: {"config": {"as_of": instant}}}}, tags | {AS_OF_TAG: instant}


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The certificates an https Dagster URL is verified with (httpx's default: certifi's, or
    SSL_CERT_FILE / SSL_CERT_DIR), loaded once per process: `httpx.Client()` loads them at each
    call, and every app the API factory makes has a client of its own (docs/performance.md)."""
    return httpx.create_ssl_context()


class DagsterRuns:
    """The Dagster webserver, as far as reports are concerned (the real `ReportRuns`)."""

    def __init__(
        self, url: str, timeout: float = DAGSTER_TIMEOUT_SECONDS, transport: httpx.BaseTransport | None = None
    ):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._http = httpx.Client(timeout=timeout, transport=transport, verify=_tls_context())

    def close(self) -> None:
        self._http.close()

    def launch_report(self, as_of: str | None, tags: dict[str, str] | None = None) -> str:
        job, run_config, tags = report_run_request(as_of, tags)
        location, repository = self._repository_of(job)
        params = {
            "selector": {"repositoryLocationName": location, "repositoryName": repository, "jobName": job},
            "runConfigData": run_config,
            "executionMetadata": {"tags": [{"key": key, "value": value} for key, value in tags.items()]},
        }
        try:
            result = self._graphql(LAUNCH_MUTATION, {"executionParams": params})["launchRun"]
        except DagsterUnavailable as exc:
            if isinstance(exc.__cause__, httpx.ConnectError):  # nothing was sent: no run
                raise
            raise LaunchUnconfirmed(str(exc)) from exc
        kind = result["__typename"]
        if kind == "LaunchRunSuccess":
            return result["run"]["runId"]
        if kind == "RunConfigValidationInvalid":
            raise DagsterRefused(kind, "; ".join(error["message"] for error in result["errors"]))
        raise DagsterRefused(kind, result.get("message") or result.get("invalidStepKey") or result.get("stepKey", ""))

    def run_info(self, run_id: str) -> RunInfo | None:
        """The run's job, status and, once it ended, why it failed or what its report warns of:
        read off all its events, a page at a time (Dagster hands 1,000 per page by default, and
        a report writes its warning at the end)."""
        events: list[dict] = []
        cursor = None
        for _ in range(MAX_EVENT_PAGES):
            run = self._graphql(RUN_QUERY, {"runId": run_id, "afterCursor": cursor})["runOrError"]
            if run["__typename"] == "RunNotFoundError":
                return None
            if run["__typename"] != "Run":
                message = run.get("message", run["__typename"])
                raise DagsterUnavailable(f"Dagster could not look up run {run_id}: {message}")
            page = run["eventConnection"]
            events += page["events"]
            if run["status"] not in FINISHED_STATES or not page["hasMore"] or page["cursor"] == cursor:
                break  # a run still going is only asked whether it ended
            cursor = page["cursor"]
        return RunInfo(run["jobName"], run["status"], failure_reason(events), data_warning(events))

    def find_run(self, tags: dict[str, str], statuses: Collection[str] | None) -> str | None:
        run_filter: dict = {"tags": [{"key": key, "value": value} for key, value in tags.items()]}
        if statuses is not None:
            run_filter["statuses"] = sorted(statuses)
        runs = self._graphql(RUNS_BY_TAG_QUERY, {"filter": run_filter})["runsOrError"]
        if runs["__typename"] != "Runs":
            raise DagsterUnavailable(f"Dagster could not list runs: {runs.get('message', runs['__typename'])}")
        return runs["results"][0]["runId"] if runs["results"] else None

    def _repository_of(self, job: str) -> tuple[str, str]:
        """The code location and repository holding `job` (exactly one must)."""
        answer = self._graphql(REPOSITORIES_QUERY)["repositoriesOrError"]
        if answer["__typename"] != "RepositoryConnection":
            raise DagsterRefused(answer["__typename"], answer.get("message", ""))
        holders = [
            (repository["location"]["name"], repository["name"])
            for repository in answer["nodes"]
            if any(pipeline["name"] == job for pipeline in repository["pipelines"])
        ]
        if len(holders) != 1:
            found = "No jobs" if not holders else f"{len(holders)} repositories hold jobs"
            raise DagsterRefused("JobNotFoundError", f"{found} with the name `{job}` exist")
        return holders[0]

    def _graphql(self, query: str, variables: dict | None = None) -> dict:
        try:
            response = self._http.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}})
            response.raise_for_status()
            data = response.json()["data"]
            if not isinstance(data, dict):
                raise TypeError("no data in the answer")
            return data
        except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
            raise DagsterUnavailable(self._unreachable(exc)) from exc

    def _unreachable(self, exc: Exception) -> str:
        return f"Dagster webserver at {self.url} is unreachable or did not answer within {self.timeout:g} s ({type(exc).__name__})"


class FinishedRuns:
    """Runs that have ended, as Dagster last described them (a finished run never changes), so
    polls of a finished report do not ask Dagster again. The least recently used are forgotten
    beyond `size` (they are then asked for once more)."""

    def __init__(self, size: int = 10_000):
        self.size = size
        self._runs: OrderedDict[str, RunInfo] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, run_id: str) -> RunInfo | None:
        with self._lock:
            run = self._runs.get(run_id)
            if run is not None:
                self._runs.move_to_end(run_id)
            return run

    def remember(self, run_id: str, run: RunInfo) -> None:
        if run.status not in FINISHED_STATES:
            return
        with self._lock:
            self._runs[run_id] = run
            self._runs.move_to_end(run_id)
            while len(self._runs) > self.size:
                self._runs.popitem(last=False)


def _user_message(message: str) -> str:
    """'dagster._core...Failure: as-of time ...' -> 'as-of time ...'."""
    first = message.strip().splitlines()[0] if message.strip() else message
    return re.sub(r"^[\w.]*(?:Error|Exception|Failure): ", "", first).strip()


def _root_cause(error: dict) -> str:
    """The innermost message of a Python error chain ("Error occurred while executing op" wraps it)."""
    while error.get("cause"):
        error = error["cause"]
    return _user_message(error.get("message") or "")


def failure_reason(events: list[dict]) -> str | None:
    """Why a run failed, from its GraphQL events: each failed step's innermost cause, else the
    last run-level failure or cancellation message."""
    step_errors = [
        _root_cause(e["error"]) for e in events if e["__typename"] == "ExecutionStepFailureEvent" and e.get("error")
    ]
    if step_errors:
        return "; ".join(dict.fromkeys(step_errors))
    run_messages = [
        e["message"] for e in events if e["__typename"] in ("RunFailureEvent", "RunCanceledEvent") and e.get("message")
    ]
    return run_messages[-1] if run_messages else None


def data_warning(events: list[dict]) -> str | None:
    """A report run's stale-data or no-data warning (names.DATA_WARNING_LABEL), from the metadata
    of its GraphQL events: an as-of report's output, the current report's materialisation."""
    for event in events:
        for entry in event.get("metadataEntries") or ():
            if entry.get("label") == DATA_WARNING_LABEL and entry.get("text"):
                return entry["text"]
    return None
