"""Access control of ``aqi-webserver``: the mutation detector, token settings, and a real server process."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from aqi_assets.server.auth import (
    ApiToken,
    TokenConfigError,
    auth_headers,
    classify_graphql_request,
    classify_graphql_ws_frame,
    load_token,
)

PROJECT = Path(__file__).resolve().parents[2]
TOKEN = "aqi-test-" + secrets.token_urlsafe(24)
FILE_TOKEN = "aqi-file-" + secrets.token_urlsafe(24)
TOKEN_SETTINGS = ("AQI_API_TOKEN", "AQI_API_TOKEN_FILE", "AQI_PROTECT_READS")

LAUNCH = """
mutation LaunchStationGraph($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message }
  }
}"""
SELECTOR_QUERY = """
query Selector {
  repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } }
  assetNodeOrError(assetKey: {path: ["station_graph"]}) { ... on AssetNode { jobNames } }
}"""


# ---------------------------------------------------------------- the detector and the settings


def _json_post(payload) -> dict:
    return {"method": "POST", "content_type": "application/json", "body": json.dumps(payload).encode()}


def test_mutation_detector_on_documents():
    query = classify_graphql_request(**_json_post({"query": "query Runs { version }"}))
    assert (query.changes_state, query.operations) == (False, ("query Runs",))

    mutation = classify_graphql_request(**_json_post({"query": LAUNCH, "variables": {}}))
    assert (mutation.changes_state, mutation.operations) == (True, ("mutation LaunchStationGraph",))

    mixed = "query Read { version } mutation Write { reloadWorkspace { __typename } }"
    picked_query = classify_graphql_request(**_json_post({"query": mixed, "operationName": "Read"}))
    assert (picked_query.changes_state, picked_query.operations) == (True, ("query Read", "mutation Write"))

    batch = [{"query": "{ version }"}, {"query": "query B { version }"}]
    reads = classify_graphql_request(**_json_post(batch))
    assert (reads.changes_state, len(reads.operations)) == (False, 2)
    assert classify_graphql_request(**_json_post([{"query": "{ version }"}, {"query": LAUNCH}])).changes_state

    for garbage in (b"{not json", b"[]", b"[1, 2]", b'"mutation"', b'{"variables": {}}', b'{"query": 7}',
                    json.dumps({"query": "mutation {"}).encode(), json.dumps({"query": "{" * 5000}).encode()):
        verdict = classify_graphql_request("POST", content_type="application/json", body=garbage)
        assert verdict.changes_state, garbage[:40]

    def changes(method: str, content_type: str = "", body: bytes = b"", query_string: bytes = b"") -> bool:
        return classify_graphql_request(method, query_string, content_type, body).changes_state

    assert changes("GET", query_string=b"query=mutation+M+%7B+x+%7D")
    assert changes("GET", query_string=b"query=%7Bversion%7D&query=mutation+%7Bx%7D")
    assert not changes("GET", query_string=b"query=%7Bversion%7D")
    assert not changes("GET")  # the GraphiQL page
    assert changes("POST", "application/graphql", b"mutation { x }")
    assert not changes("POST", "application/graphql", b"{ version }")
    assert changes("POST", "text/plain", b"query=whatever")
    assert changes("POST", "text/plain")  # no query anywhere
    assert changes("PUT", "application/json", b'{"query":"{version}"}')

    frame = {"type": "start", "id": "1", "payload": {"query": "mutation { reloadWorkspace { __typename } }"}}
    assert classify_graphql_ws_frame({"text": json.dumps(frame)}).changes_state
    frame["payload"]["query"] = "subscription { locationStateChangeEvents { __typename } }"
    assert not classify_graphql_ws_frame({"text": json.dumps(frame)}).changes_state
    assert not classify_graphql_ws_frame({"text": '{"type": "connection_init"}'}).changes_state
    assert classify_graphql_ws_frame({"text": "not json"}).changes_state


def test_token_settings_from_env_or_file(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(f"\n  {FILE_TOKEN}  \n")
    assert load_token({"AQI_API_TOKEN": TOKEN}).matches(TOKEN.encode())
    from_file = load_token({"AQI_API_TOKEN_FILE": str(token_file)})
    assert from_file.matches(FILE_TOKEN) and not from_file.matches(FILE_TOKEN + "x")
    assert not from_file.matches(b"") and not from_file.matches(FILE_TOKEN[:-1])
    assert FILE_TOKEN not in repr(from_file) and FILE_TOKEN not in str(from_file)
    assert load_token({}) is None and auth_headers({}) == {}
    assert auth_headers({"AQI_API_TOKEN_FILE": str(token_file)}) == {"Authorization": f"Bearer {FILE_TOKEN}"}

    short = "tiny-secret"
    with pytest.raises(TokenConfigError) as error:
        load_token({"AQI_API_TOKEN": short})
    assert short not in str(error.value) and "16 characters" in str(error.value)
    with pytest.raises(TokenConfigError, match="not both"):
        load_token({"AQI_API_TOKEN": TOKEN, "AQI_API_TOKEN_FILE": str(token_file)})
    (tmp_path / "empty").write_text(" \n")
    with pytest.raises(TokenConfigError, match="empty"):
        load_token({"AQI_API_TOKEN_FILE": str(tmp_path / "empty")})
    with pytest.raises(TokenConfigError, match="no such file"):
        load_token({"AQI_API_TOKEN_FILE": str(tmp_path / "missing")})
    with pytest.raises(TokenConfigError, match="printable ASCII"):
        ApiToken("a token with spaces inside", source="test")


# ---------------------------------------------------------------- a real server process


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_command() -> list[str]:
    script = Path(sys.executable).with_name("aqi-webserver")
    return [str(script)] if script.exists() else [sys.executable, "-m", "aqi_assets.server.app"]


def _env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TOKEN_SETTINGS}
    env.update(settings)
    return env


@dataclass
class Server:
    url: str
    home: Path
    process: subprocess.Popen
    stdout: Path
    stderr: Path
    reader_headers: dict

    def logs(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")

    def graphql(self, query: str, variables: dict | None = None, **kwargs) -> requests.Response:
        payload = {"query": query, "variables": variables or {}}
        return requests.post(f"{self.url}/graphql", json=payload, timeout=60, **kwargs)

    def run_ids(self) -> set[str]:
        with dg.DagsterInstance.from_config(str(self.home)) as instance:
            return {run.run_id for run in instance.get_runs()}


def _launch(tmp: Path, args: list[str], reader_headers: dict, **settings: str) -> Server:
    home = tmp / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(PROJECT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    port = _free_port()
    stdout, stderr = tmp / "stdout.log", tmp / "stderr.log"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [*_server_command(), "-w", "workspace.yaml", "-p", str(port), *args],
            cwd=PROJECT, env=_env(DAGSTER_HOME=str(home), **settings), stdout=out, stderr=err,
            start_new_session=True,
        )
    return Server(f"http://127.0.0.1:{port}", home, process, stdout, stderr, reader_headers)


def _wait_until_ready(server: Server, seconds: float = 120) -> None:
    """Until ``/server_info`` answers and the code location lists its repository."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert server.process.poll() is None, f"server exited early:\n{server.logs()}"
        try:
            if requests.get(f"{server.url}/server_info", timeout=2).status_code == 200:
                data = server.graphql(SELECTOR_QUERY, headers=server.reader_headers).json()["data"]
                if data["repositoriesOrError"].get("nodes"):
                    return
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"server did not become ready:\n{server.logs()}")


def _stop(server: Server) -> None:
    try:
        os.killpg(server.process.pid, signal.SIGTERM)
        server.process.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:  # the code server it started shares the process group
        os.killpg(server.process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    server.process.wait(timeout=15)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Two servers started side by side: token from the environment with open reads, and token
    from a file with ``--protect-reads``."""
    tmp = tmp_path_factory.mktemp("protected-reads")
    token_file = tmp / "token"
    token_file.write_text(FILE_TOKEN + "\n")
    token_file.chmod(0o600)
    started = [
        _launch(tmp_path_factory.mktemp("open-reads"), [], {}, AQI_API_TOKEN=TOKEN),
        _launch(tmp, ["--protect-reads"], {"Authorization": f"Bearer {FILE_TOKEN}"},
                AQI_API_TOKEN_FILE=str(token_file)),
    ]
    try:
        for running in started:
            _wait_until_ready(running)
        yield started
    finally:
        for running in started:
            _stop(running)


@pytest.fixture(scope="module")
def server(servers) -> Server:
    return servers[0]


@pytest.fixture(scope="module")
def protected_server(servers) -> Server:
    return servers[1]


def _launch_station_graph(server: Server, **auth) -> requests.Response:
    """Launch the asset job on ``station_graph``; ``auth`` (headers/cookies) goes with the mutation only."""
    data = server.graphql(SELECTOR_QUERY, headers=server.reader_headers).json()["data"]
    repository = data["repositoriesOrError"]["nodes"][0]
    selector = {
        "repositoryLocationName": repository["location"]["name"],
        "repositoryName": repository["name"],
        "jobName": data["assetNodeOrError"]["jobNames"][0],
        "assetSelection": [{"path": ["station_graph"]}],
    }
    return server.graphql(LAUNCH, {"params": {"selector": selector}}, **auth)


def _assert_refused(response: requests.Response, error_part: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert error_part in body["error"]
    assert body["hint"] == "send Authorization: Bearer <token> (AQI_API_TOKEN)"


def test_reads_are_open_without_a_token(server):
    from dagster_webserver.version import __version__

    response = server.graphql("{ version }")
    assert (response.status_code, response.json()["data"]["version"]) == (200, __version__)
    response = requests.get(f"{server.url}/graphql", params={"query": "{ version }"}, timeout=30)
    assert (response.status_code, response.json()["data"]["version"]) == (200, __version__)
    assert requests.get(f"{server.url}/", headers={"Accept": "text/html"}, timeout=30).status_code == 200


def test_launch_needs_the_token_and_a_refusal_changes_nothing(server):
    before = server.run_ids()
    _assert_refused(_launch_station_graph(server), "a token is required to change state")
    _assert_refused(_launch_station_graph(server, headers={"Authorization": "Bearer wrong-" + TOKEN}),
                    "not valid")
    mutation_by_get = requests.get(f"{server.url}/graphql", params={"query": LAUNCH}, timeout=30)
    _assert_refused(mutation_by_get, "a token is required")
    assert server.run_ids() == before

    accepted = _launch_station_graph(server, headers={"Authorization": f"Bearer {TOKEN}"})
    assert accepted.status_code == 200
    launched = accepted.json()["data"]["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    assert server.run_ids() == before | {run_id}
    with dg.DagsterInstance.from_config(str(server.home)) as instance:
        assert instance.get_run_by_id(run_id).asset_selection == {dg.AssetKey("station_graph")}


def test_rest_report_endpoint_needs_the_token(server):
    def latest():
        with dg.DagsterInstance.from_config(str(server.home)) as instance:
            return instance.get_latest_materialization_event(dg.AssetKey("station_graph"))

    url = f"{server.url}/report_asset_materialization/station_graph"
    _assert_refused(requests.post(url, timeout=30), "POST request")
    assert latest() is None
    accepted = requests.post(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert accepted.status_code == 200, accepted.text
    assert latest().asset_materialization.asset_key == dg.AssetKey("station_graph")


def test_login_cookie_authorises_a_launch_and_logout_ends_it(server):
    form = requests.get(f"{server.url}/aqi/login", timeout=30)
    assert form.status_code == 200 and 'name="token"' in form.text

    wrong = requests.post(f"{server.url}/aqi/login", data={"token": TOKEN[:-1]}, allow_redirects=False,
                          timeout=30)
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    offsite = requests.post(f"{server.url}/aqi/login", data={"token": TOKEN, "next": "//evil.example/"},
                            allow_redirects=False, timeout=30)
    assert (offsite.status_code, offsite.headers["location"]) == (303, "/")

    login = requests.post(f"{server.url}/aqi/login", data={"token": TOKEN, "next": "/runs"},
                          allow_redirects=False, timeout=30)
    assert (login.status_code, login.headers["location"]) == (303, "/runs")
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
    session = {"aqi_session": login.cookies["aqi_session"]}

    before = server.run_ids()
    other_site = {"Origin": "http://dashboard.example.org"}
    _assert_refused(_launch_station_graph(server, cookies=session, headers=other_site), "a token is required")
    assert server.run_ids() == before
    same_site = {"Origin": server.url}
    launched = _launch_station_graph(server, cookies=session, headers=same_site).json()["data"]["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess"
    assert server.run_ids() == before | {launched["run"]["runId"]}

    logout = requests.get(f"{server.url}/aqi/logout", cookies=session, allow_redirects=False, timeout=30)
    assert logout.status_code == 303 and "aqi_session=;" in logout.headers["set-cookie"]
    assert "Max-Age=0" in logout.headers["set-cookie"]
    _assert_refused(_launch_station_graph(server, cookies=session), "a token is required")
    assert len(server.run_ids()) == len(before) + 1


def test_websocket_mutation_is_refused(server):
    with connect(f"ws://127.0.0.1:{server.url.rsplit(':', 1)[1]}/graphql", subprotocols=["graphql-ws"]) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(ws.recv(timeout=30)) == {"type": "connection_ack"}
        ws.send(json.dumps({"type": "start", "id": "1",
                            "payload": {"query": "mutation { reloadWorkspace { __typename } }"}}))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=30)
    assert closed.value.rcvd.code == 4401


def test_protect_reads_and_token_from_a_file(protected_server):
    _assert_refused(protected_server.graphql("{ version }"), "reads are protected")
    headers = auth_headers({"AQI_API_TOKEN_FILE": str(protected_server.home.parent / "token")})
    assert protected_server.graphql("{ version }", headers=headers).status_code == 200
    assert requests.get(f"{protected_server.url}/server_info", timeout=30).status_code == 200
    page = requests.get(f"{protected_server.url}/runs", headers={"Accept": "text/html"}, timeout=30)
    assert page.status_code == 401 and 'href="/aqi/login"' in page.text

    launched = _launch_station_graph(protected_server, headers=headers).json()["data"]["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess"
    assert protected_server.run_ids() == {launched["run"]["runId"]}


def test_missing_or_bad_token_refuses_to_start(tmp_path):
    def start(*args: str, **settings: str) -> subprocess.CompletedProcess:
        env = _env(DAGSTER_HOME=str(tmp_path), **settings)
        return subprocess.run([*_server_command(), "-p", str(_free_port()), *args], cwd=PROJECT, env=env,
                              capture_output=True, text=True, timeout=60)

    missing = start()
    assert missing.returncode == 2 and "no API token configured; refusing to start" in missing.stderr
    short = start(AQI_API_TOKEN="short-secret")
    assert short.returncode == 2 and "16 characters" in short.stderr and "short-secret" not in short.stderr
    empty_file = tmp_path / "empty-token"
    empty_file.write_text("\n")
    empty = start(AQI_API_TOKEN_FILE=str(empty_file))
    assert empty.returncode == 2 and "the token file is empty" in empty.stderr
    insecure = start("--insecure-no-token", "-w", str(tmp_path / "no-such-workspace.yaml"))
    assert insecure.returncode == 2 and "WARNING: --insecure-no-token" in insecure.stderr


def test_the_token_never_reaches_the_logs(server, protected_server):
    _launch_station_graph(server, headers={"Authorization": f"Bearer {TOKEN}x"})
    requests.post(f"{server.url}/aqi/login", data={"token": TOKEN + "x"}, timeout=30)
    requests.post(f"{server.url}/aqi/login", data={"token": TOKEN}, allow_redirects=False, timeout=30)
    assert server.graphql("{ version }", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    logs = server.logs()
    assert "refused POST /graphql (operations: mutation LaunchStationGraph) from 127.0.0.1:" in logs
    assert "refused POST /aqi/login" in logs and "token from AQI_API_TOKEN;" in logs
    assert TOKEN not in logs
    protected_logs = protected_server.logs()
    assert "token from AQI_API_TOKEN_FILE=" in protected_logs and FILE_TOKEN not in protected_logs
