"""The Dagster GraphQL client of ``aqi-retrain``: the queries and mutations, and one-line errors."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import requests
import yaml

from aqi_assets.server.auth import TokenConfigError, auth_headers

URL_ENV = "AQI_DAGSTER_URL"
DEFAULT_URL = "http://127.0.0.1:3000"
IN_FLIGHT = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"]
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
# Runs whose events one request asks for: keeps the document within the limits aqi-webserver
# sets for requests without the token (documents.ANONYMOUS_LIMITS).
RUNS_PER_REQUEST = 20


class ApiError(Exception):
    """A failure to report in one line (server unreachable, token refused, launch rejected ...)."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


RUN_FIELDS = """
  runId jobName status creationTime startTime endTime
  tags { key value }
"""

SERVER = """
query Server {
  version
  instance { info }
  repositoriesOrError {
    __typename
    ... on RepositoryConnection { nodes { name location { name } } }
    ... on PythonError { message }
  }
}"""

INSTIGATORS = """
query Instigators($selector: RepositorySelector!, $dayRange: Int, $tickLimit: Int) {
  repositoryOrError(repositorySelector: $selector) {
    __typename
    ... on Repository {
      sensors {
        name sensorType minIntervalSeconds
        targets { pipelineName }
        sensorState {
          status
          typeSpecificData { ... on SensorData { lastCursor } }
          ticks(dayRange: $dayRange, limit: $tickLimit) { timestamp status skipReason runIds error { message } }
        }
      }
      schedules {
        name cronSchedule
        scheduleState {
          status
          ticks(dayRange: $dayRange, limit: $tickLimit) { timestamp status skipReason runIds error { message } }
        }
      }
    }
    ... on PythonError { message }
  }
}"""

SENSOR_DRY_RUN = """
mutation SensorDryRun($selector: SensorSelector!, $cursor: String) {
  sensorDryRun(selectorData: $selector, cursor: $cursor) {
    __typename
    ... on DryRunInstigationTick {
      evaluationResult {
        skipReason
        error { message }
        runRequests { runKey jobName tags { key value } }
      }
    }
    ... on PythonError { message }
    ... on SensorNotFoundError { message }
    ... on UnauthorizedError { message }
  }
}"""

LAUNCH_RUN = """
mutation LaunchRun($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on RunConfigValidationInvalid { errors { message path } }
    ... on PipelineNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on RunConflict { message }
    ... on UnauthorizedError { message }
    ... on PythonError { message }
  }
}"""

RUNS = f"""
query Runs($filter: RunsFilter, $limit: Int) {{
  runsOrError(filter: $filter, limit: $limit) {{
    __typename
    ... on Runs {{ count results {{ {RUN_FIELDS} }} }}
    ... on PythonError {{ message }}
  }}
}}"""

RUN = f"""
query Run($runId: ID!) {{
  runOrError(runId: $runId) {{
    __typename
    ... on Run {{ {RUN_FIELDS} }}
    ... on RunNotFoundError {{ message }}
    ... on PythonError {{ message }}
  }}
}}"""

#: The events of a run that tell its story: gates, materializations (promotions) and failures.
RUN_EVENTS = """
  logsForRun(runId: %s, afterCursor: %s) {
    __typename
    ... on EventConnection {
      cursor hasMore
      events {
        __typename
        ... on AssetCheckEvaluationEvent {
          evaluation { checkName success description assetKey { path } }
        }
        ... on MaterializationEvent {
          assetKey { path }
          metadataEntries { ...Entry }
        }
        ... on ObservationEvent {
          assetKey { path }
          metadataEntries { ...Entry }
        }
        ... on ExecutionStepFailureEvent {
          stepKey
          error { message }
          failureMetadata { description metadataEntries { ...Entry } }
        }
        ... on RunFailureEvent { message }
      }
    }
    ... on PythonError { message }
  }"""

METADATA_ENTRY = """
fragment Entry on MetadataEntry {
  label
  ... on TextMetadataEntry { text }
  ... on FloatMetadataEntry { floatValue }
  ... on IntMetadataEntry { intValue }
  ... on JsonMetadataEntry { jsonString }
  ... on MarkdownMetadataEntry { mdStr }
  ... on BoolMetadataEntry { boolValue }
  ... on TableMetadataEntry { table { records } }
}"""

LATEST_MATERIALIZATIONS = """
  asset_%d: assetOrError(assetKey: {path: ["%s"]}) {
    __typename
    ... on Asset {
      assetMaterializations(limit: %d) { runId timestamp metadataEntries { ...Entry } }
    }
  }"""

ASSET_JOB = """
query AssetJob($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) { __typename ... on AssetNode { jobNames } }
}"""


def metadata_dict(entries: list[dict]) -> dict[str, Any]:
    """``label -> value`` of GraphQL metadata entries (JSON entries decoded)."""
    out: dict[str, Any] = {}
    for entry in entries or []:
        if "jsonString" in entry:
            out[entry["label"]] = json.loads(entry["jsonString"])
            continue
        if "table" in entry:
            out[entry["label"]] = [json.loads(record) for record in entry["table"]["records"]]
            continue
        for field in ("text", "floatValue", "intValue", "mdStr", "boolValue"):
            if field in entry:
                out[entry["label"]] = entry[field]
                break
    return out


def tags_dict(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run.get("tags") or []}


def instance_identity(info: str | None) -> dict[str, str | None]:
    """The instance's home directory and run storage, read from the YAML that ``instance { info }``
    returns; None where the server does not say (a server may withhold the instance config)."""
    try:
        settings = yaml.safe_load(info) if info else {}
    except yaml.YAMLError:
        settings = {}
    settings = settings if isinstance(settings, dict) else {}
    artifacts = settings.get("local_artifact_storage")
    config = artifacts.get("config") if isinstance(artifacts, dict) else None
    storage = settings.get("run_storage")
    return {"home": config.get("base_dir") if isinstance(config, dict) else None,
            "run_storage": storage.get("class") if isinstance(storage, dict) else storage}


def resolve_url(url: str | None) -> str:
    return (url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")


class DagsterApi:
    """The platform's Dagster webserver, spoken to over GraphQL with the API token."""

    def __init__(self, url: str | None = None, timeout: float = 60.0):
        self.url = resolve_url(url)
        self.timeout = timeout
        try:
            self.headers = auth_headers()
        except TokenConfigError as error:
            raise ApiError(f"API token settings: {error}", exit_code=2) from error
        self._server: dict | None = None

    # ------------------------------------------------------------ transport

    def execute(self, query: str, variables: dict | None = None) -> dict:
        """The ``data`` of one GraphQL request; any failure becomes an ``ApiError``."""
        try:
            response = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}},
                                     headers=self.headers, timeout=self.timeout)
        except requests.ConnectionError as error:
            raise ApiError(f"cannot reach the Dagster server at {self.url} (is it running? "
                           f"set --url or {URL_ENV})") from error
        except requests.Timeout as error:
            raise ApiError(f"the Dagster server at {self.url} did not answer within {self.timeout:.0f} s") from error
        if response.status_code == 401:
            why = _json_or_empty(response).get("error") or "unauthorized"
            sent = "the token sent was refused" if self.headers else "no token was sent"
            raise ApiError(f"the server at {self.url} refused the request (401, {why}): {sent}; "
                           "set AQI_API_TOKEN or AQI_API_TOKEN_FILE to the server's token")
        if response.status_code != 200:
            raise ApiError(f"the server at {self.url} answered HTTP {response.status_code}: "
                           f"{response.text.strip()[:200]}")
        body = _json_or_empty(response)
        if body.get("errors"):
            raise ApiError("GraphQL error: " + "; ".join(e.get("message", "?") for e in body["errors"]))
        if "data" not in body:
            raise ApiError(f"the server at {self.url} did not answer with GraphQL data (is it a Dagster webserver?)")
        return body["data"]

    # ------------------------------------------------------------ server and repository

    def server(self) -> dict:
        """What this client acts on: ``url``, ``dagster_version``, ``instance`` (``home``,
        ``run_storage``), ``code_location`` and ``repository`` (the first loaded one)."""
        if self._server is None:
            data = self.execute(SERVER)
            result = data["repositoriesOrError"]
            nodes = result.get("nodes") or []
            if not nodes:
                raise ApiError(f"no code location is loaded on {self.url}: "
                               f"{result.get('message', 'check the workspace in the Dagster UI')}")
            self._server = {"url": self.url, "dagster_version": data["version"],
                            "instance": instance_identity((data.get("instance") or {}).get("info")),
                            "code_location": nodes[0]["location"]["name"], "repository": nodes[0]["name"]}
        return self._server

    def repository(self) -> dict:
        """``{repositoryName, repositoryLocationName}`` of the (first) loaded code location."""
        server = self.server()
        return {"repositoryName": server["repository"], "repositoryLocationName": server["code_location"]}

    def instigators(self, day_range: int | None = None, tick_limit: int | None = 1) -> dict:
        """Sensors and schedules with their state and recent ticks."""
        result = self.execute(INSTIGATORS, {"selector": self.repository(), "dayRange": day_range,
                                            "tickLimit": tick_limit})["repositoryOrError"]
        if result["__typename"] != "Repository":
            raise ApiError(f"cannot read sensors and schedules: {result.get('message', result['__typename'])}")
        return result

    def sensor_dry_run(self, name: str, cursor: str | None = None) -> dict:
        """Evaluate a sensor now without launching anything: ``{skipReason, error, runRequests}``."""
        result = self.execute(SENSOR_DRY_RUN, {"selector": {**self.repository(), "sensorName": name},
                                               "cursor": cursor})["sensorDryRun"]
        if result["__typename"] != "DryRunInstigationTick":
            raise ApiError(f"cannot evaluate {name}: {result.get('message', result['__typename'])}")
        return result["evaluationResult"] or {}

    # ------------------------------------------------------------ runs

    def launch(self, job: str, run_config: dict | None = None, tags: dict[str, str] | None = None,
               asset_selection: list[str] | None = None) -> str:
        """Launch (submit to the run queue) and return the run id."""
        selector: dict[str, Any] = {**self.repository(), "jobName": job}
        if asset_selection:
            selector["assetSelection"] = [{"path": [key]} for key in asset_selection]
        params = {"selector": selector, "runConfigData": run_config or {},
                  "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}}
        result = self.execute(LAUNCH_RUN, {"params": params})["launchRun"]
        kind = result["__typename"]
        if kind == "LaunchRunSuccess":
            return result["run"]["runId"]
        if kind == "RunConfigValidationInvalid":
            problems = "; ".join(
                (".".join(e["path"]) + ": " if e.get("path") else "") + e["message"] for e in result["errors"])
            raise ApiError(f"{job}: invalid run config: {problems}")
        raise ApiError(f"cannot launch {job}: {result.get('message', kind)}")

    def asset_job(self, asset: str) -> str:
        """A job that can materialize ``asset`` (Dagster's implicit asset job)."""
        result = self.execute(ASSET_JOB, {"key": {"path": [asset]}})["assetNodeOrError"]
        if result["__typename"] != "AssetNode" or not result["jobNames"]:
            raise ApiError(f"the server does not define the asset {asset}")
        return result["jobNames"][0]

    def run(self, run_id: str) -> dict:
        result = self.execute(RUN, {"runId": run_id})["runOrError"]
        if result["__typename"] != "Run":
            raise ApiError(f"run {run_id}: {result.get('message', result['__typename'])}")
        return result

    def runs(self, tags: dict[str, str] | None = None, statuses: list[str] | None = None,
             created_after: float | None = None, job: str | None = None, limit: int = 200) -> list[dict]:
        """Runs, newest first."""
        run_filter: dict[str, Any] = {}
        if tags:
            run_filter["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
        if statuses:
            run_filter["statuses"] = statuses
        if created_after is not None:
            run_filter["createdAfter"] = created_after
        if job:
            run_filter["pipelineName"] = job
        result = self.execute(RUNS, {"filter": run_filter, "limit": limit})["runsOrError"]
        if result["__typename"] != "Runs":
            raise ApiError(f"cannot list runs: {result.get('message', result['__typename'])}")
        return result["results"]

    def run_events(self, run_ids: list[str]) -> dict[str, list[dict]]:
        """The gate, materialization and failure events of each run (one request per page of
        ``RUNS_PER_REQUEST`` runs)."""
        events: dict[str, list[dict]] = {run_id: [] for run_id in run_ids}
        cursors: dict[str, str | None] = {run_id: None for run_id in run_ids}
        while cursors:
            pending = list(cursors)[:RUNS_PER_REQUEST]
            fields = "\n".join(f"run_{i}: " + RUN_EVENTS.strip() % (json.dumps(run_id), json.dumps(cursors[run_id]))
                               for i, run_id in enumerate(pending))
            data = self.execute("query RunEvents {\n" + fields + "\n}\n" + METADATA_ENTRY)
            for i, run_id in enumerate(pending):
                page = data[f"run_{i}"]
                events[run_id].extend(page.get("events") or [])
                if page.get("hasMore") and page.get("events"):
                    cursors[run_id] = page["cursor"]
                else:
                    del cursors[run_id]
        return events

    def latest_materializations(self, assets: list[str], limit: int = 1) -> dict[str, list[dict]]:
        """The newest ``limit`` materializations of each asset: ``{runId, timestamp, metadata}``."""
        fields = "\n".join(LATEST_MATERIALIZATIONS % (i, asset, limit) for i, asset in enumerate(assets))
        data = self.execute("query Latest {\n" + fields + "\n}\n" + METADATA_ENTRY)
        out = {}
        for i, asset in enumerate(assets):
            found = data[f"asset_{i}"].get("assetMaterializations") or []
            out[asset] = [{"runId": m["runId"], "timestamp": float(m["timestamp"]) / 1000.0,
                           "metadata": metadata_dict(m["metadataEntries"])} for m in found]
        return out

    def wait_for_run(self, run_id: str, timeout: float = 3600.0, poll: float = 1.0) -> dict:
        """Poll until the run finishes; raises ``ApiError`` on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(run_id)
            if run["status"] in FINISHED:
                return run
            if time.monotonic() > deadline:
                raise ApiError(f"run {run_id} still {run['status']} after {timeout:.0f} s "
                               "(queued runs need a running dagster-daemon)")
            time.sleep(poll)


def _json_or_empty(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
