"""Test session settings and shared fixtures.

Before any project module is imported, the session gets its own Dagster home, lake and MLflow
store in a temporary folder, and a small fixed simulated source (``TEST_SOURCE``), so the
definitions load the same way for every test and nothing touches the developer's instance.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

SESSION_ROOT = Path(tempfile.mkdtemp(prefix="aqi-tests-"))
TEST_SOURCE = "simulated:seed=7,stations=6,start=2024-01-01,end=2025-12-31"
os.environ["DAGSTER_HOME"] = str(SESSION_ROOT / "dagster_home")
os.environ["AQI_SOURCE"] = TEST_SOURCE
os.environ["AQI_LAKE_DIR"] = str(SESSION_ROOT / "lake")
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{SESSION_ROOT / 'mlflow.db'}"
os.environ["AQI_MLFLOW_ARTIFACTS"] = str(SESSION_ROOT / "mlflow-artifacts")
os.environ.pop("AQI_ALERT_WEBHOOK_URL", None)
os.environ["AQI_TRAINING_RETRY_DELAY_SECONDS"] = "0.5"  # retries of transient failures, quickly
os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"  # an unreachable MLflow server fails at once
(SESSION_ROOT / "dagster_home").mkdir(parents=True, exist_ok=True)

BEIJING_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "beijing"


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(SESSION_ROOT, ignore_errors=True)


@pytest.fixture(scope="session")
def beijing_dir() -> Path:
    if not BEIJING_DIR.is_dir():
        pytest.skip(f"real Beijing data not found at {BEIJING_DIR}")
    return BEIJING_DIR


@pytest.fixture
def webhook():
    """A local HTTP server standing in for a Slack webhook: ``(url, received JSON bodies)``."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received: list = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/aqi", received
    server.shutdown()
