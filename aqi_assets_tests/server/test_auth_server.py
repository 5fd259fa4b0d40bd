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
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import requests
from graphql import get_introspection_query
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from aqi_assets.server.auth import ApiToken, TokenConfigError, auth_headers, load_token
from aqi_assets.server.documents import (
    ANONYMOUS_LIMITS,
    DocumentRejected,
    classify_graphql_request,
    classify_graphql_ws_frame,
)
from aqi_assets.server.proxy import ForwardedHeaders, ProxyConfigError, TrustedProxies, trusted_proxies_from

PROJECT = Path(__file__).resolve().parents[2]
TOKEN = "aqi-test-" + secrets.token_urlsafe(24)
FILE_TOKEN = "aqi-file-" + secrets.token_urlsafe(24)
TOKEN_SETTINGS = ("AQI_API_TOKEN", "AQI_API_TOKEN_FILE", "AQI_PROTECT_READS", "AQI_TRUSTED_PROXIES")

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
# 150,000 operations, 3.8 MB: parsing it takes the better part of a minute.
HUGE_DOCUMENT = " ".join(f"query q{i}{{__typename}}" for i in range(150_000))


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


def test_document_limits_are_checked_before_parsing():
    def rejected(document: str) -> DocumentRejected:
        with pytest.raises(DocumentRejected) as error:
            classify_graphql_request(**_json_post({"query": document}), limits=ANONYMOUS_LIMITS)
        return error.value

    started = time.perf_counter()
    too_many = rejected(HUGE_DOCUMENT)
    assert time.perf_counter() - started < 1  # the scan stops at the 11th operation; nothing is parsed
    assert (too_many.status, too_many.limit, too_many.value) == (400, "max_operations", 10)
    assert str(too_many) == ("the GraphQL request has more than 10 operations; "
                             "requests without the API token may send at most 10")
    assert rejected("{" * 21 + "version" + "}" * 21).limit == "max_depth"
    assert rejected("{" + " ".join(f"v{i}: version" for i in range(101)) + "}").limit == "max_aliases"
    assert rejected("{" + " version" * 1001 + "}").limit == "max_selections"
    assert rejected(" ".join(["{ version }", "mutation { reloadWorkspace { __typename } }"] * 6)).limit == \
        "max_operations"

    # Braces in strings, block strings and comments, and colons in arguments, are not counted.
    quoted = ('{ runsOrError(filter: {tags: [{key: "' + "{" * 30 + '", value: """ \\""" ' + "{" * 30 +
              '"""}]}) # ' + "{" * 30 + "\n { __typename } }")
    assert classify_graphql_request(**_json_post({"query": quoted}), limits=ANONYMOUS_LIMITS).operations == \
        ("query <anonymous>",)
    introspection = get_introspection_query(descriptions=True, input_value_deprecation=True)  # GraphiQL's
    assert not classify_graphql_request(**_json_post({"query": introspection}), limits=ANONYMOUS_LIMITS).changes_state
    with pytest.raises(DocumentRejected, match="65,537 bytes; requests without the API token may send at most 65,536"):
        ANONYMOUS_LIMITS.check_size(65_537)


def test_trusted_proxy_settings_and_forwarded_headers():
    assert not trusted_proxies_from([], {})
    trusted = trusted_proxies_from([], {"AQI_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8"})
    assert "10.1.2.3" in trusted and "127.0.0.1" in trusted
    assert "192.0.2.1" not in trusted and "not-an-address" not in trusted
    assert "::1" in trusted_proxies_from(["::1"], {"AQI_TRUSTED_PROXIES": "10.0.0.0/8"})  # the flag wins
    with pytest.raises(ProxyConfigError, match="--trusted-proxy: '10.0.0.0/33' is not an IP address or network"):
        trusted_proxies_from(["10.0.0.0/33"])

    def scope(peer: str, *headers: tuple[bytes, bytes]) -> dict:
        return {"type": "http", "scheme": "http", "client": (peer, 5000),
                "headers": [(b"host", b"internal:3000"), *headers]}

    middleware = ForwardedHeaders(None, TrustedProxies.parse(["10.0.0.0/8"], "test"))
    spoofed = [(b"x-forwarded-host", b"evil"), (b"x-forwarded-proto", b"https"), (b"forwarded", b"host=evil")]
    untrusted = middleware.resolve(scope("192.0.2.1", *spoofed))
    assert (untrusted["scheme"], untrusted["client"]) == ("http", ("192.0.2.1", 5000))
    assert untrusted["headers"] == [(b"host", b"internal:3000")]  # the forwarded headers go no further

    proxied = middleware.resolve(scope("10.0.0.5", (b"x-forwarded-host", b"aqi.example.org"),
                                       (b"x-forwarded-proto", b"https"),
                                       (b"x-forwarded-for", b"203.0.113.9, 10.0.0.7")))
    assert (proxied["scheme"], proxied["client"]) == ("https", ("203.0.113.9", 0))
    assert proxied["headers"] == [(b"host", b"aqi.example.org")]
    rfc = middleware.resolve(scope("10.0.0.5", (b"forwarded", b'for=198.51.100.1, for="[2001:db8::1]:4711";'
                                                             b'proto=https;host=aqi.example.org')))
    assert (rfc["scheme"], rfc["client"], rfc["headers"]) == ("https", ("2001:db8::1", 0),
                                                               [(b"host", b"aqi.example.org")])


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
    from a file with ``--protect-reads`` behind a trusted proxy at 127.0.0.1."""
    tmp = tmp_path_factory.mktemp("protected-reads")
    token_file = tmp / "token"
    token_file.write_text(FILE_TOKEN + "\n")
    token_file.chmod(0o600)
    started = [
        _launch(tmp_path_factory.mktemp("open-reads"), [], {}, AQI_API_TOKEN=TOKEN),
        _launch(tmp, ["--protect-reads", "--trusted-proxy", "127.0.0.1"], {"Authorization": f"Bearer {FILE_TOKEN}"},
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


def _assert_forbidden(response: requests.Response, error_part: str) -> None:
    assert response.status_code == 403, response.text
    assert "www-authenticate" not in response.headers
    assert error_part in response.json()["error"]


def _session_cookie(server: Server, token: str, **kwargs) -> dict:
    login = requests.post(f"{server.url}/aqi/login", data={"token": token}, allow_redirects=False, timeout=30,
                          **kwargs)
    assert login.status_code == 303, login.text
    name, _, value = login.headers["set-cookie"].partition(";")[0].partition("=")
    return {name: value}


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
    _assert_forbidden(_launch_station_graph(server, cookies=session, headers=other_site),
                      "the session cookie is not accepted from another origin")
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


def test_huge_documents_without_a_token_leave_the_server_responsive(server):
    """While 3.8 MB documents are posted without a token, one after another, ``/server_info``
    answers within 2 s every time: the guard refuses them by size before parsing anything."""
    body = json.dumps({"query": HUGE_DOCUMENT}).encode()
    stop = threading.Event()
    answers: list = []

    def post_repeatedly() -> None:
        while not stop.is_set():
            try:
                response = requests.post(f"{server.url}/graphql", data=body, timeout=120,
                                         headers={"Content-Type": "application/json"})
                answers.append((response.status_code, response.json()))
            except (requests.RequestException, ValueError) as error:
                answers.append((None, repr(error)))

    poster = threading.Thread(target=post_repeatedly, daemon=True)
    poster.start()
    latencies = []
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline:
            started = time.monotonic()
            assert requests.get(f"{server.url}/server_info", timeout=60).status_code == 200
            latencies.append(time.monotonic() - started)
            time.sleep(0.1)
    finally:
        stop.set()
        poster.join(timeout=120)
    print(f"\n/server_info: {len(latencies)} requests, slowest {max(latencies):.3f} s, while "
          f"{len(answers)} documents of {len(body):,} bytes were posted without a token")
    assert max(latencies) < 2, latencies
    assert len(answers) >= 5
    status, payload = answers[0]
    assert (status, payload["limit"]) == (413, {"max_bytes": 65536}), payload
    assert payload["error"] == (f"the GraphQL request is {len(body):,} bytes; requests without the API token "
                                "may send at most 65,536 bytes")
    assert {status for status, _ in answers} == {413}


def test_limits_without_a_token_and_larger_documents_with_it(server):
    assert server.graphql(get_introspection_query(descriptions=True)).status_code == 200  # GraphiQL's first query
    aliases = "{" + " ".join(f"v{i}: version" for i in range(101)) + "}"
    refused = server.graphql(aliases)
    assert (refused.status_code, refused.json()["limit"]) == (400, {"max_aliases": 100})
    assert "more than 100 aliased fields" in refused.json()["error"]
    by_get = requests.get(f"{server.url}/graphql", params={"query": aliases}, timeout=30)
    assert (by_get.status_code, by_get.json()["limit"]) == (400, {"max_aliases": 100})
    padded = "{ version }\n" + "# a long comment\n" * 6000  # 102 KB
    assert server.graphql(padded).status_code == 413

    token = {"Authorization": f"Bearer {TOKEN}"}
    version = server.graphql("{ version }").json()["data"]["version"]
    assert server.graphql(aliases, headers=token).json()["data"]["v100"] == version
    assert server.graphql(padded, headers=token).json()["data"]["version"] == version


def test_forwarded_headers_from_an_untrusted_peer_are_ignored(server):
    session = _session_cookie(server, TOKEN)
    before = server.run_ids()
    for spoofed in ({"X-Forwarded-Host": "evil", "X-Forwarded-Proto": "http"}, {"Forwarded": "host=evil;proto=http"}):
        response = _launch_station_graph(server, cookies=session, headers={"Origin": "http://evil", **spoofed})
        _assert_forbidden(response, f"Origin http://evil is not this server's origin ({server.url})")
    assert server.run_ids() == before


def test_session_cookie_changes_state_only_on_a_same_origin_post(server):
    session = _session_cookie(server, TOKEN)
    before = server.run_ids()
    by_get = requests.get(f"{server.url}/graphql", params={"query": LAUNCH}, cookies=session,
                          headers={"Origin": server.url}, timeout=30)
    _assert_forbidden(by_get, "a session cookie cannot change state with GET")
    _assert_forbidden(_launch_station_graph(server, cookies=session),
                      "the request has neither an Origin header nor Sec-Fetch-Site: same-origin")
    assert server.run_ids() == before
    assert server.graphql("{ version }", cookies=session).status_code == 200  # reads need no Origin

    same_origin = {"Sec-Fetch-Site": "same-origin"}
    launched = _launch_station_graph(server, cookies=session, headers=same_origin).json()["data"]["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess"
    assert server.run_ids() == before | {launched["run"]["runId"]}


def test_forwarded_headers_from_a_trusted_proxy(protected_server):
    """The protected server trusts 127.0.0.1: there the proxy's headers give the public origin."""
    proxy = {"X-Forwarded-Host": "aqi.example.org", "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    login = requests.post(f"{protected_server.url}/aqi/login", data={"token": FILE_TOKEN}, headers=proxy,
                          allow_redirects=False, timeout=30)
    assert login.status_code == 303 and "; Secure" in login.headers["set-cookie"]
    session = _session_cookie(protected_server, FILE_TOKEN, headers=proxy)

    before = protected_server.run_ids()
    public_page = {"Origin": "https://aqi.example.org"}
    _assert_forbidden(_launch_station_graph(protected_server, cookies=session, headers=public_page),
                      "Origin https://aqi.example.org is not this server's origin (http://127.0.0.1:")
    launched = _launch_station_graph(protected_server, cookies=session, headers={**public_page, **proxy})
    assert launched.json()["data"]["launchRun"]["__typename"] == "LaunchRunSuccess"
    assert len(protected_server.run_ids()) == len(before) + 1

    _assert_refused(protected_server.graphql("{ version }", headers=proxy), "reads are protected")
    assert "from 203.0.113.9: a token is required to read" in protected_server.logs()


def _websocket_start(server: Server, query: str) -> ConnectionClosed:
    """Send one document over the GraphQL websocket; the close it is answered with."""
    with connect(f"ws://127.0.0.1:{server.url.rsplit(':', 1)[1]}/graphql", subprotocols=["graphql-ws"],
                 max_size=None) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(ws.recv(timeout=30)) == {"type": "connection_ack"}
        ws.send(json.dumps({"type": "start", "id": "1", "payload": {"query": query}}))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=30)
    return closed.value


def test_websocket_mutation_and_oversized_document_are_refused(server):
    assert _websocket_start(server, "mutation { reloadWorkspace { __typename } }").rcvd.code == 4401
    oversized = _websocket_start(server, HUGE_DOCUMENT).rcvd
    assert (oversized.code, oversized.reason) == (1009, "over the limit max_bytes=65536")
    # Dagster validates subscriptions on its event loop: fewer names are accepted there.
    many_names = "subscription { locationStateChangeEvents { " + "__typename " * 500 + "} }"
    complex_ = _websocket_start(server, many_names).rcvd
    assert (complex_.code, complex_.reason) == (4400, "over the limit max_selections=500")


def test_protect_reads_and_token_from_a_file(protected_server):
    _assert_refused(protected_server.graphql("{ version }"), "reads are protected")
    headers = auth_headers({"AQI_API_TOKEN_FILE": str(protected_server.home.parent / "token")})
    assert protected_server.graphql("{ version }", headers=headers).status_code == 200
    assert requests.get(f"{protected_server.url}/server_info", timeout=30).status_code == 200
    page = requests.get(f"{protected_server.url}/runs", headers={"Accept": "text/html"}, timeout=30)
    assert page.status_code == 401 and 'href="/aqi/login"' in page.text

    before = protected_server.run_ids()
    launched = _launch_station_graph(protected_server, headers=headers).json()["data"]["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess"
    assert protected_server.run_ids() == before | {launched["run"]["runId"]}


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
    bad_proxy = start(AQI_API_TOKEN=TOKEN, AQI_TRUSTED_PROXIES="10.0.0.0/8,proxy.internal")
    assert bad_proxy.returncode == 2
    assert "AQI_TRUSTED_PROXIES: 'proxy.internal' is not an IP address or network" in bad_proxy.stderr
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
    assert "forwarded headers trusted from: none)" in logs
    assert TOKEN not in logs
    protected_logs = protected_server.logs()
    assert "token from AQI_API_TOKEN_FILE=" in protected_logs and FILE_TOKEN not in protected_logs
    assert "forwarded headers trusted from: 127.0.0.1/32)" in protected_logs
