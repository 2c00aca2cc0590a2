"""The HTTP API, end to end: the real `hpo dashboard` server over a real store, driven by the
Python client, curl-like raw requests, and a schemathesis fuzz of its live OpenAPI schema."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the helper module next to this file

from _dashboard_server import (
    MLFLOW_UI,
    SPACE,
    Server,
    counts,
    fill_study,
    hpo_command,
    legacy_study,
    running_server,
)

import hpo
from hpo.client import Client, ClientError
from hpo.server import is_loopback

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('api')}/hpo.db"
    fill_study(url, "demo")
    return url


@pytest.fixture(scope="module")
def server(store_url: str) -> Iterator[Server]:
    with running_server(store_url, "--mlflow-ui", MLFLOW_UI) as s:
        yield s


def call(
    server: Server,
    method: str,
    path: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One raw HTTP request (what curl would send): status, headers, decoded JSON body."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(server.url + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read()
            return r.status, dict(r.headers), json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        text = e.read()
        return e.code, dict(e.headers), json.loads(text) if text else None


# -- the client drives a study ---------------------------------------------------------------


def remote_objective(trial: Any) -> float:
    x = trial.params["lr"]
    for step in (1, 2, 3):
        trial.report(x * 10 + 1.0 / step, step)
    if trial.number == 2:
        raise ValueError("diverged (simulated)")
    if trial.number == 3:
        raise hpo.TrialPruned()
    return x * 10 + trial.params["layers"]


def test_client_drives_a_study_end_to_end(storage_url: str) -> None:
    with running_server(storage_url) as server:
        client = Client(server.url)
        study = client.create_study(
            space=SPACE, strategy="random", direction="minimize", name="remote", seed=7
        )
        study.optimize(remote_objective, n_trials=8)
        fixed = study.ask(params={"lr": 0.01, "layers": 2, "optimizer": "adam"})
        assert fixed.number == 8 and dict(fixed.params) == {
            "lr": 0.01,
            "layers": 2,
            "optimizer": "adam",
        }
        fixed.report(0.5, step=1)
        assert fixed.should_prune() is False  # the study has no pruner
        study.tell(fixed, 0.05)

        remote = study.trials
        assert [t.number for t in remote] == list(range(9))
        assert counts(remote) == {"complete": 7, "failed": 1, "pruned": 1}
        assert remote[2].error == "ValueError: diverged (simulated)"
        assert remote[3].value == pytest.approx(remote[3].intermediate[3])  # last reported
        assert study.best_value == pytest.approx(0.05)
        assert study.best_trial.number == 8

        # The HTTP path is the library's path: the store holds exactly what the client saw ...
        local = hpo.load_study("remote", storage=storage_url).trials
        for r, t in zip(remote, local, strict=True):
            assert (r.number, r.state, dict(r.params), r.value, r.error) == (
                t.number,
                t.state,
                dict(t.params),
                t.value,
                t.error,
            )
            assert dict(r.intermediate) == dict(t.intermediate)
        # ... and the strategy proposed what it proposes in-process for the same seed.
        twin = hpo.create_study(space=SPACE, strategy="random", seed=7)
        for t in local[:8]:
            assert dict(twin.ask().params) == dict(t.params)

        listed = {s["name"]: s for s in client.studies()}
        assert listed["remote"]["states"] == {
            "running": 0,
            "complete": 7,
            "pruned": 1,
            "failed": 1,
        }
        assert listed["remote"]["best_value"] == pytest.approx(0.05)


def test_client_errors_are_hpo_errors(server: Server) -> None:
    client = Client(server.url)
    with pytest.raises(hpo.StudyNotFoundError, match="no study named 'missing'"):
        client.load_study("missing")
    with pytest.raises(hpo.SpaceError, match="low"):
        client.create_study({"x": {"type": "float", "low": 2, "high": 1}})
    with pytest.raises(hpo.DuplicatedStudyError):
        client.create_study(SPACE, strategy="random", name="demo")
    with pytest.raises(ClientError, match="cannot reach the hpo server"):
        Client("http://127.0.0.1:9").studies()  # the discard port: nothing listens
    with pytest.raises(hpo.HpoError, match="url must look like"):
        Client("ftp://example")


def test_client_tell_follows_the_library_rules(server: Server) -> None:
    client = Client(server.url)
    study = client.create_study(SPACE, strategy="random", name="rules", seed=1)
    nan = study.tell(study.ask(), float("nan"))
    assert nan.state is hpo.TrialState.FAILED and nan.error == "the objective returned NaN"
    none = study.tell(study.ask(), None)
    assert none.state is hpo.TrialState.FAILED and "returned None" in (none.error or "")
    failed = study.tell(study.ask(), state="failed", error="OOM")
    assert failed.error == "OOM"
    with pytest.raises(ClientError, match="already finished") as e:
        study.tell(failed.number, 1.0)
    assert e.value.status == 409


def test_client_fits_long_failure_reasons_into_the_api(server: Server, store_url: str) -> None:
    """A CUDA error or a traceback can be longer than the API takes: the client trims it
    (and drops NUL characters) rather than leave the trial running on a 422."""
    study = Client(server.url).create_study(SPACE, strategy="random", name="long-reasons")

    def crash(trial: Any) -> float:
        raise RuntimeError("CUDA error: " + "x" * 5000 + "\x00")

    study.optimize(crash, n_trials=2)
    trials = hpo.load_study("long-reasons", storage=store_url).trials
    assert [t.state for t in trials] == [hpo.TrialState.FAILED] * 2
    assert all(len(t.error or "") == 2000 and "\x00" not in (t.error or "") for t in trials)
    assert all((t.error or "").startswith("RuntimeError: CUDA error: xxx") for t in trials)


def test_values_at_the_float_limit_never_give_a_5xx(server: Server) -> None:
    """Finite but extreme values (±1.7e308) must not overflow the GP or the importance
    forest: asks and every plot still answer."""
    client = Client(server.url)
    study = client.create_study({"a": {"type": "float", "low": 0, "high": 1}}, name="extreme")
    for i in range(14):
        study.tell(study.ask(), 1.7e308 if i % 2 else -1.7e308)
    assert call(server, "POST", "/api/studies/extreme/ask")[0] == 201
    status, _, plots = call(server, "GET", "/api/studies/extreme/plots")
    assert status == 200, plots
    assert call(server, "GET", "/api/studies/extreme/plots/importance")[0] == 200


def test_other_sites_can_neither_write_nor_read_without_a_token(
    server: Server, store_url: str
) -> None:
    """Without a token: a page of another site cannot POST here (its browser names it in
    Origin), nor read through a name that rebinds to 127.0.0.1 (Host)."""
    Client(server.url).create_study(SPACE, strategy="random", name="guarded-site")
    before = len(hpo.load_study("guarded-site", storage=store_url).trials)
    got, _, answer = call(
        server, "POST", "/api/studies/guarded-site/ask", headers={"Origin": "http://evil.example"}
    )
    assert got == 403 and answer["detail"].startswith("cross-site write refused")
    got, _, answer = call(server, "GET", "/api/studies", headers={"Host": "evil.example:8080"})
    assert got == 421 and "loopback names only" in answer["detail"]
    # ... and headers that are no names or URLs at all get the same answers, not a 500
    assert call(server, "GET", "/api/studies", headers={"Host": "[::1"})[0] == 421
    got, _, _ = call(
        server, "POST", "/api/studies/guarded-site/ask", headers={"Origin": "http://[x"}
    )
    assert got == 403
    assert len(hpo.load_study("guarded-site", storage=store_url).trials) == before
    port = server.url.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):  # the dashboard's own names
        assert call(server, "GET", "/api/studies", headers={"Host": host})[0] == 200
    same = {"Origin": server.url}
    assert call(server, "POST", "/api/studies/guarded-site/ask", headers=same)[0] == 201


# -- what the dashboard reads ----------------------------------------------------------------


def test_trials_list_sends_everything_the_table_shows(server: Server) -> None:
    status, headers, trials = call(server, "GET", "/api/studies/demo/trials")
    assert status == 200 and len(trials) == 12
    by_number = {t["number"]: t for t in trials}
    assert by_number[3]["state"] == "pruned" and by_number[3]["reason"] == "pruned at step 2"
    assert by_number[5]["state"] == "failed"
    assert by_number[5]["reason"] == "RuntimeError: CUDA out of memory (simulated)"
    assert by_number[6]["intermediate"] == {
        "1": pytest.approx(by_number[6]["intermediate"]["1"]),
        "2": None,
        "3": by_number[6]["intermediate"]["3"],
    }
    assert all(t["device"] == "cpu" for t in trials)
    assert by_number[0]["mlflow_run_id"] == "abc123"
    assert by_number[0]["mlflow_url"] == f"{MLFLOW_UI}/#/runs/abc123"
    assert by_number[1]["mlflow_url"] is None
    assert all(t["duration_s"] is not None and t["duration_s"] >= 0 for t in trials)

    # Polling: an unchanged list is a bodiless 304 ...
    etag = headers["etag"]
    status, _, body = call(
        server, "GET", "/api/studies/demo/trials", headers={"If-None-Match": etag}
    )
    assert status == 304 and body is None
    # ... the page's view leaves the attributes out and keeps everything it shows ...
    _, slim_headers, slim = call(server, "GET", "/api/studies/demo/trials?attrs=false")
    assert [{k: v for k, v in t.items() if not k.endswith("_attrs")} for t in trials] == slim
    assert "user_attrs" in trials[0] and "user_attrs" not in slim[0]
    assert slim_headers["etag"] != etag
    # ... and filters work.
    _, _, pruned = call(server, "GET", "/api/studies/demo/trials?state=pruned&state=failed")
    assert [t["number"] for t in pruned] == [3, 5]
    _, _, tail = call(server, "GET", "/api/studies/demo/trials?min_number=10")
    assert [t["number"] for t in tail] == [10, 11]


def test_etag_changes_when_the_study_does(server: Server, store_url: str) -> None:
    hpo.create_study(space=SPACE, strategy="random", storage=store_url, name="growing")
    _, headers, _ = call(server, "GET", "/api/studies/growing/trials")
    study = hpo.load_study("growing", storage=store_url)
    t = study.ask()
    _, after_ask, running = call(server, "GET", "/api/studies/growing/trials")
    assert after_ask["etag"] != headers["etag"] and running[0]["state"] == "running"
    t.report(1.0, 1)
    _, after_report, _ = call(server, "GET", "/api/studies/growing/trials")
    assert after_report["etag"] != after_ask["etag"]


def test_snapshot_builds_the_study_and_plots_from_one_read(server: Server, store_url: str) -> None:
    hpo.create_study(space=SPACE, strategy="random", storage=store_url, name="snap")
    study = hpo.load_study("snap", storage=store_url)
    study.tell(study.ask(), 1.0)
    _, headers, _ = call(server, "GET", "/api/studies/snap/trials")
    snap = urllib.parse.quote(headers["etag"])
    study.tell(study.ask(), 0.5)  # written after the read
    _, _, old = call(server, "GET", f"/api/studies/snap/plots?kind=history&snapshot={snap}")
    _, _, new = call(server, "GET", "/api/studies/snap/plots?kind=history")
    assert len(old["history"]["data"][0]["x"]) == 1 and len(new["history"]["data"][0]["x"]) == 2
    _, _, detail = call(server, "GET", f"/api/studies/snap?snapshot={snap}")
    assert detail["n_trials"] == 1 and detail["best_value"] == 1.0
    _, _, fresh = call(server, "GET", "/api/studies/snap?snapshot=unknown")
    assert fresh["n_trials"] == 2 and fresh["best_value"] == 0.5


def test_plots_api_draws_every_trial(server: Server) -> None:
    status, _, figs = call(server, "GET", "/api/studies/demo/plots")
    assert status == 200 and set(figs) == {"history", "parallel", "importance", "slices", "curves"}
    n_complete = 10  # 12 trials, one pruned, one failed
    assert len(figs["history"]["data"][0]["x"]) == n_complete
    lines = [tr["meta"]["trials"] for tr in figs["parallel"]["data"] if "meta" in tr]
    assert sorted(n for group in lines for n in group) == sorted(figs["history"]["data"][0]["x"])
    assert figs["importance"]["data"][0]["y"][-1] == "lr"  # drawn bottom-up: largest last
    curves = [tr for tr in figs["curves"]["data"] if "trials" in tr.get("meta", {})]
    assert sum(len(tr["meta"]["trials"]) for tr in curves) == 12
    _, _, two = call(server, "GET", "/api/studies/demo/plots?kind=history&kind=curves")
    assert set(two) == {"history", "curves"}
    _, _, fig = call(server, "GET", "/api/studies/demo/plots/curves?highlight=1&highlight=4")
    assert [tr["name"] for tr in fig["data"] if tr["meta"].get("highlight")] == [
        "trial 1 (complete)",
        "trial 4 (complete)",
    ]
    _, _, only = call(
        server,
        "GET",
        "/api/studies/demo/plots/curves?highlight=1&highlight=3&only_highlighted=true",
    )
    assert [tr["meta"]["trials"] for tr in only["data"]] == [[1], [3]]


def test_page_and_offline_plotly_are_served(server: Server) -> None:
    with urllib.request.urlopen(server.url + "/", timeout=30) as r:
        page = r.read().decode()
    assert 'src="static/app.js"' in page and "http" not in page  # nothing from the network
    with urllib.request.urlopen(server.url + "/static/app.js", timeout=30) as r:
        app_js = r.read().decode()
    assert 'script.src = "static/plotly-basic.min.js"' in app_js
    with urllib.request.urlopen(server.url + "/static/plotly-basic.min.js", timeout=30) as r:
        js = r.read()
    assert len(js) > 500_000 and b"plotly.js (basic - minified)" in js[:200]
    with urllib.request.urlopen(server.url + "/static/plotly-basic.LICENSE.txt", timeout=30) as r:
        assert b"MIT License" in r.read()


def test_vendored_plotly_matches_the_plotly_package() -> None:
    """The page's bundle and the one `hpo plot` writes into html files come from the same
    plotly.js major version (update static/plotly-basic.min.js with the plotly package)."""
    import plotly

    from hpo.server._dashboard import STATIC

    def version(head: bytes) -> str:
        m = re.search(rb"plotly\.js (?:\(basic - minified\) )?v(\d+)\.(\d+)\.(\d+)", head)
        assert m, head[:120]
        return m.group(1).decode()

    vendored = (STATIC / "plotly-basic.min.js").read_bytes()[:300]
    packaged = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()[:300]
    assert version(vendored) == version(packaged)


# -- bad input: always a 4xx and one clear line ------------------------------------------------

BAD = [
    ("GET", "/api/studies/missing", None, 404, "no study named 'missing'"),
    ("GET", "/api/studies/demo/trials/999", None, 404, "has no trial 999"),
    ("GET", "/api/studies/demo/trials/-1", None, 422, "greater than or equal to 0"),
    ("GET", "/api/studies/demo/trials?state=done", None, 422, "state"),
    ("GET", "/api/studies/demo/plots/pie", None, 422, "kind"),
    (
        "POST",
        "/api/studies",
        {"space": {"x": {"type": "float", "low": 2, "high": 1}}},
        422,
        "`low < high` must hold",
    ),
    (
        "POST",
        "/api/studies",
        {"space": {"x": {"type": "float", "low": 0, "high": 1}}, "strategy": "magic"},
        422,
        "magic",
    ),
    ("POST", "/api/studies", {"space": "no_such_space"}, 422, "named spaces"),
    ("POST", "/api/studies", {"space": {"x": {"type": "complex"}}}, 422, "space"),
    ("POST", "/api/studies", {"space": {}, "colour": "red"}, 422, "colour"),
    ("POST", "/api/studies", {"space": SPACE.to_dict(), "name": "demo"}, 409, "already exists"),
    ("POST", "/api/studies", {"space": SPACE.to_dict(), "name": "a/b"}, 422, "name"),
    ("POST", "/api/studies/missing/ask", None, 404, "no study named 'missing'"),
    ("POST", "/api/studies/demo/ask", {"params": {"lr": 5.0}}, 422, "lr"),
    ("POST", "/api/studies/demo/trials/0/tell", {"value": 1.0}, 409, "already finished"),
    ("POST", "/api/studies/demo/trials/999/tell", {"value": 1.0}, 404, "has no trial 999"),
    ("POST", "/api/studies/demo/trials/0/tell", {"value": "abc"}, 422, "valid number"),
    ("POST", "/api/studies/demo/trials/0/tell", {"state": "complete"}, 422, "value is required"),
    ("POST", "/api/studies/demo/trials/0/tell", {"state": "done", "value": 1}, 422, "state"),
    ("POST", "/api/studies/demo/trials/0/report", {"step": -1, "value": 1.0}, 422, "step"),
    (
        "POST",
        "/api/studies/demo/trials/0/report",
        {"step": 1, "value": 1.0},
        409,
        "already finished",
    ),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "says"), BAD)
def test_bad_input_is_a_4xx_with_one_line(
    server: Server, method: str, path: str, body: Any, status: int, says: str
) -> None:
    got, _, answer = call(server, method, path, body)
    assert got == status, answer
    assert says in answer["detail"], answer
    assert "\n" not in answer["detail"] and answer["error"]


def test_non_json_and_nan_bodies_are_422(server: Server) -> None:
    got, _, answer = call(server, "POST", "/api/studies", raw=b"{not json")
    assert got == 422 and "JSON" in answer["detail"]
    # JSON has no NaN; Python's encoder writes one anyway: it is refused, not stored.
    got, _, answer = call(server, "POST", "/api/studies/demo/ask", raw=b'{"params": {"lr": NaN}}')
    assert got == 422


# -- the token ---------------------------------------------------------------------------------


def test_writes_need_the_token_when_one_is_set(store_url: str) -> None:
    with running_server(store_url, env={"HPO_TOKEN": TOKEN}) as server:
        body = {"space": SPACE.to_dict(), "strategy": "random", "name": "guarded"}
        got, headers, answer = call(server, "POST", "/api/studies", body)
        assert got == 401 and "Authorization: Bearer" in answer["detail"]
        assert headers.get("www-authenticate") == "Bearer"
        got, _, answer = call(
            server, "POST", "/api/studies", body, headers={"Authorization": "Bearer nope"}
        )
        assert (got, answer["detail"]) == (401, "wrong token.")
        got, _, _ = call(server, "POST", "/api/studies/demo/ask")
        assert got == 401
        # Reads stay open (the page is read-only), under any name the server is reached by.
        assert call(server, "GET", "/api/studies/demo/trials")[0] == 200
        assert call(server, "GET", "/api/studies", headers={"Host": "hpo.example"})[0] == 200

        with pytest.raises(ClientError) as e:
            Client(server.url).ask("demo")
        assert e.value.status == 401
        study = Client(server.url, token=TOKEN).create_study(
            SPACE, strategy="random", name="guarded"
        )
        trial = study.ask()
        trial.report(1.0, step=1)
        assert study.tell(trial, 0.5).state is hpo.TrialState.COMPLETE


def test_listening_beyond_loopback_needs_a_token(store_url: str) -> None:
    env = {k: v for k, v in __import__("os").environ.items() if k != "HPO_TOKEN"}
    out = subprocess.run(
        [*hpo_command(), "dashboard", "--storage", store_url, "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: refusing to listen on 0.0.0.0 without a token: anyone who reaches it could "
        "write to your studies; pass --token (or set HPO_TOKEN), or bind 127.0.0.1."
    ]


def test_ctrl_c_stops_the_server_cleanly(store_url: str) -> None:
    with running_server(store_url) as server:
        server.proc.send_signal(signal.SIGINT)
        assert server.proc.wait(timeout=60) == 0
        deadline = time.monotonic() + 10
        while "dashboard stopped\n" not in server.output and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.output[-1] == "dashboard stopped\n", server.output


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.5", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.1.2.3", False),
        ("::", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


# -- fuzz ------------------------------------------------------------------------------------


def test_openapi_fuzz_never_gets_a_5xx(storage_url: str) -> None:
    """Every operation of the live schema, with generated (valid and invalid) input: never a
    5xx, and every answer matches the schema. Bounded: a few examples per operation.

    Each generated case is sent twice: as generated (its study name is random, so mostly a
    404) and aimed at a real study with running trials, so tell/report/ask get past the
    lookup and into the library.
    """
    fill_study(storage_url, "demo", n_trials=6)
    target = hpo.create_study(space=SPACE, strategy="random", storage=storage_url, name="fuzz")
    for _ in range(40):
        target.ask()  # running trials for the fuzzer to tell and report to
    with running_server(storage_url, env={"HPO_TOKEN": TOKEN}) as server:
        _fuzz(server)


def _fuzz(server: Server) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance

    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 9
    failures: list[str] = []
    calls: dict[int, int] = {}  # answers by class: 2 -> 2xx, 4 -> 4xx
    for op in operations:

        @given(case=op.as_strategy())
        @settings(
            max_examples=20,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            for aimed in (False, True):
                if aimed and "name" in (case.path_parameters or {}):
                    case.path_parameters["name"] = "fuzz"
                    if "number" in case.path_parameters:
                        case.path_parameters["number"] = abs(int(case.path_parameters["number"]))
                        case.path_parameters["number"] %= 45
                response = case.call(base_url=server.url, headers=headers)
                calls[response.status_code // 100] = calls.get(response.status_code // 100, 0) + 1
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")
                case.validate_response(
                    response, checks=[not_a_server_error, response_schema_conformance]
                )

        run()
    assert not failures, failures
    assert calls.get(2, 0) >= 20 and calls.get(4, 0) >= 20, calls  # both paths were exercised


# -- hostile requests and the headers (issue 17) -------------------------------------------------


def _raw(server: Server, head: str, body: bytes = b"", wait: float = 10.0) -> tuple[int, bytes]:
    """Send ``head`` (request line and headers) and ``body`` over a socket, as they are; the
    answer's status and the whole of what came back within ``wait`` seconds."""
    host, port = urllib.parse.urlsplit(server.url).netloc.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=wait) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        got = b""
        try:
            while b"\r\n\r\n" not in got or len(got) < got.index(b"\r\n\r\n") + 40:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                got += chunk
        except TimeoutError:
            pass
    return int(got.split(b" ", 2)[1]), got


def test_a_big_body_is_refused_before_it_is_read(store_url: str) -> None:
    """The token is checked, and the declared size, before the body is read: the answers
    come while the client has sent 1 kB of a declared 100 MB. A body with no length is cut
    off at the limit (1 MiB)."""
    with running_server(store_url, env={"HPO_TOKEN": TOKEN}) as server:
        port = server.url.rsplit(":", 1)[1]
        head = (
            f"POST /api/studies HTTP/1.1\nHost: 127.0.0.1:{port}\n"
            f"Content-Type: application/json\nContent-Length: {100 << 20}\n"
        )
        start = time.monotonic()
        status, answer = _raw(server, head, b"x" * 1024)
        assert status == 401 and b"needs a token" in answer
        status, answer = _raw(server, head + f"Authorization: Bearer {TOKEN}\n", b"x" * 1024)
        assert status == 413 and b"over the limit of 1048576 bytes" in answer
        assert time.monotonic() - start < 10
        chunked = (
            f"POST /api/studies/demo/ask HTTP/1.1\nHost: 127.0.0.1:{port}\n"
            f"Authorization: Bearer {TOKEN}\nTransfer-Encoding: chunked\n"
        )
        piece = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
        status, _ = _raw(server, chunked, piece * 17)  # 1.06 MiB and more to come
        assert status == 413
        # ... and a body under the limit that makes a long error gets a short one
        params = {f"p{i}": 1 for i in range(40_000)}
        got, _, answer = call(
            server,
            "POST",
            "/api/studies/demo/ask",
            {"params": params},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert got == 422 and len(answer["detail"]) <= 1000, len(answer["detail"])


def test_the_password_of_the_store_never_reaches_a_client(postgres_url: str) -> None:
    """On a PostgreSQL URL with a password (trust auth takes any), no answer — 409, 404, 422,
    405, 503 (the database gone, behind a proxy that is then closed) — nor the server's
    output holds it, raw or percent-encoded."""
    secret = "pw-S3cr@t!"
    quoted = urllib.parse.quote(secret, safe="")
    user, rest = postgres_url.split("://", 1)[1].split("@", 1)
    hostport, db = rest.split("/", 1)
    proxy = _Proxy(*hostport.rsplit(":", 1))
    url = f"postgresql://{user}:{quoted}@127.0.0.1:{proxy.port}/{db}"
    fill_study(url, "demo", n_trials=3)
    seen: list[str] = []
    try:
        with running_server(url) as server:
            body = {"space": SPACE.to_dict(), "name": "demo"}
            answers = [
                call(server, "POST", "/api/studies", body),
                call(server, "GET", "/api/studies/missing"),
                call(server, "POST", "/api/studies/demo/ask", {"params": {"lr": 9.0}}),
                call(server, "PUT", "/api/studies"),
                call(server, "GET", "/api/config"),
            ]
            assert [a[0] for a in answers] == [409, 404, 422, 405, 200]
            assert "already exists in postgresql" in answers[0][2]["detail"]
            proxy.close()  # the database is gone
            answers.append(call(server, "GET", "/api/studies/demo/trials"))
            assert answers[-1][0] == 503, answers[-1]
            seen = [json.dumps(a[2]) + json.dumps(a[1]) for a in answers]
            time.sleep(0.5)
            seen += server.output
    finally:
        proxy.close()
    text = "\n".join(seen)
    assert "***@127.0.0.1" in text
    assert secret not in text and quoted not in text and "S3cr" not in text


class _Proxy:
    """A TCP proxy to the PostgreSQL server that can be closed: the database goes away."""

    def __init__(self, host: str, port: str) -> None:
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.open = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while self.open:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.open = False
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() that blocks
        with contextlib.suppress(OSError):
            self.listener.close()
        for s in self.conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
                s.close()


def test_token_reads_protects_the_reads_and_the_schema_says_so(store_url: str) -> None:
    with running_server(store_url, "--token-reads", env={"HPO_TOKEN": TOKEN}) as server:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for path in ("/api/studies", "/api/studies/demo", "/api/studies/demo/trials"):
            got, headers, answer = call(server, "GET", path)
            assert got == 401 and "writes and reads" in answer["detail"], (path, answer)
            assert headers.get("www-authenticate") == "Bearer"
            assert call(server, "GET", path, headers=auth)[0] == 200
        assert call(server, "GET", "/api/studies/demo/plots/history", headers=auth)[0] == 200
        assert call(server, "GET", "/api/config")[2]["token_reads"] is True  # the page asks
        with urllib.request.urlopen(server.url + "/", timeout=30) as r:
            assert r.status == 200  # the page holds no data
        assert Client(server.url, token=TOKEN).load_study("demo").trials
        schema = server.get("/openapi.json")
        assert isinstance(schema, dict)
        ops = schema["paths"]
        assert ops["/api/studies/{name}/trials"]["get"]["security"] == [{"HTTPBearer": []}]
        assert ops["/api/studies/{name}/ask"]["post"]["security"] == [{"HTTPBearer": []}]
        assert "security" not in ops["/api/config"]["get"]


def test_without_a_token_the_schema_declares_no_auth(server: Server) -> None:
    schema = server.get("/openapi.json")
    assert isinstance(schema, dict)
    assert "securitySchemes" not in schema.get("components", {})
    assert all("security" not in op for ops in schema["paths"].values() for op in ops.values())


def test_security_headers(server: Server) -> None:
    with urllib.request.urlopen(server.url + "/", timeout=30) as r:
        page = dict(r.headers)
    csp = page["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert page["x-frame-options"] == "DENY" and page["x-content-type-options"] == "nosniff"
    _, api, _ = call(server, "GET", "/api/studies")
    assert (
        api["x-content-type-options"] == "nosniff"
        and "frame-ancestors" in api["content-security-policy"]
    )


def test_parse_failures_are_422_and_a_wrong_method_names_the_allowed_ones(server: Server) -> None:
    got, _, answer = call(server, "POST", "/api/studies", raw=b'{"space": "\xff"}')
    assert got == 422 and answer["error"] == "ValidationError"
    for method in ("OPTIONS", "PUT", "DELETE"):
        got, headers, answer = call(server, method, "/api/studies")
        assert got == 405 and headers["allow"] == "GET, POST", (method, headers)
        assert answer["error"] == "MethodNotAllowed"
    got, headers, _ = call(server, "OPTIONS", "/api/studies/demo/trials")
    assert got == 405 and headers["allow"] == "GET"


NAMES = ["a/b", "runs/2024/lr sweep", "x?y#z", "100%", "ü:ñ+é", "it's"]


@pytest.mark.parametrize("name", NAMES)
def test_any_stored_name_opens(server: Server, store_url: str, name: str) -> None:
    """Names made in Python (or before the name rule) open over the API, percent-encoded as
    one path segment; the Python client encodes them so."""
    study = legacy_study(store_url, name)
    study.tell(study.ask(), 1.0)
    q = urllib.parse.quote(name, safe="")
    got, _, detail = call(server, "GET", f"/api/studies/{q}")
    assert got == 200 and detail["name"] == name
    got, _, trials = call(server, "GET", f"/api/studies/{q}/trials?attrs=false")
    assert got == 200 and len(trials) == 1
    assert call(server, "GET", f"/api/studies/{q}/trials/0")[0] == 200
    assert call(server, "GET", f"/api/studies/{q}/plots?kind=history")[0] == 200
    got, _, asked = call(server, "POST", f"/api/studies/{q}/ask")
    assert got == 201 and asked["study"] == name
    remote = Client(server.url).load_study(name)
    assert len(remote.trials) == 2
    got, _, answer = call(server, "GET", f"/api/studies/{q}x")
    assert got == 404 and f"no study named {name + 'x'!r}" in answer["detail"]


def test_compare_of_many_trials_asks_with_ranges(server: Server, store_url: str) -> None:
    study = hpo.create_study(space=SPACE, strategy="random", storage=store_url, name="many")
    for i in range(150):
        t = study.ask()
        t.report(float(i), 1)
        study.tell(t, float(i))
    got, _, fig = call(
        server,
        "GET",
        "/api/studies/many/plots/curves?only_highlighted=true&highlight_ranges=0-139,149",
    )
    assert got == 200 and len(fig["data"]) == 141
    got, _, answer = call(server, "GET", "/api/studies/many/plots/curves?highlight_ranges=9-1")
    assert got == 422 and "reversed" in answer["detail"]
