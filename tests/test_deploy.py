"""The docker-compose deployment, proven without a Docker engine.

1. ``docker-compose.yml`` validates against the Compose Specification's JSON schema (the copy
   vendored, with its licence, by the ``check-jsonschema`` package), and every service's
   command, published ports and environment agree with the real CLIs: hpo's own commands are
   parsed by hpo's Click/Typer app, ``ray start`` by Ray's, ``mlflow server`` by MLflow's.
2. The same services run as plain processes on loopback — the compose file's own commands
   and environment, with the compose network's host names mapped to this machine — in a
   network namespace: PostgreSQL (already running here), ``mlflow server``, ``ray start
   --head``, a second ``ray start`` node and ``hpo dashboard``. A small study runs through
   them, and the test checks the study in the store, the runs in MLflow and the dashboard.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from _cluster import PG_SOCKET, PYTHON, NetNS, netns_reason

import hpo
from hpo.trial import TrialState

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
MULTIHOST = ROOT / "docker-compose.multihost.yml"
ENV_EXAMPLE = ROOT / ".env.example"
_VAR = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def _dotenv(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def _interpolate(node: Any, env: dict[str, str]) -> Any:
    """Compose's variable substitution: ${VAR}, ${VAR:-default}, ${VAR:?error}; $$ is $."""

    def one(text: str) -> str:
        def sub(m: re.Match[str]) -> str:
            name, op, arg = m.group(1), m.group(2), m.group(3)
            value = env.get(name)
            if op in (":-", "-") and not value:
                return arg
            if op in (":?", "?") and not value:
                raise AssertionError(f"{name} is required: {arg}")
            return value or ""

        return _VAR.sub(sub, text).replace("$$", "$")

    if isinstance(node, str):
        return one(node)
    if isinstance(node, list):
        return [_interpolate(x, env) for x in node]
    if isinstance(node, dict):
        return {k: _interpolate(v, env) for k, v in node.items()}
    return node


class _ComposeLoader(yaml.SafeLoader):
    """YAML as Compose reads it: ``!reset`` (drop what the file below set) and ``!override``
    (replace instead of merge) are the specification's own tags."""


def _untagged(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_ComposeLoader.add_constructor("!reset", _untagged)
_ComposeLoader.add_constructor("!override", _untagged)


def _compose(env: dict[str, str] | None = None, path: Path = COMPOSE) -> dict[str, Any]:
    raw = yaml.load(path.read_text(), Loader=_ComposeLoader)  # a SafeLoader
    return dict(_interpolate(raw, _dotenv(ENV_EXAMPLE) if env is None else env))


def _multihost() -> dict[str, Any]:
    return _compose({**_dotenv(ENV_EXAMPLE), "HPO_HOST_IP": "10.0.0.5"}, MULTIHOST)


def _schema_errors(doc: dict[str, Any]) -> list[str]:
    import check_jsonschema
    import jsonschema

    path = Path(check_jsonschema.__file__).parent / "builtin_schemas/vendor/compose-spec.json"
    schema = json.loads(path.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)
    ]


# -- 1. the file against the specification and the real CLIs ------------------------------


def test_compose_file_follows_the_compose_specification() -> None:
    assert _schema_errors(_compose()) == []
    broken = _compose()
    broken["services"]["dashboard"]["ports"] = {"8080": 8080}
    broken["services"]["postgres"]["healthcheck"]["interval"] = ["5s"]
    errors = "\n".join(_schema_errors(broken))  # the validator does catch mistakes
    assert "services/dashboard/ports: {'8080': 8080} is not of type 'array'" in errors
    assert "services/postgres/healthcheck/interval: ['5s'] is not of type 'string'" in errors


def test_multihost_layer_follows_the_specification_and_advertises_one_address() -> None:
    assert _schema_errors(_multihost()) == []
    services = _multihost()["services"]
    for name in ("ray-head", "ray-worker"):
        svc = services[name]
        assert svc["network_mode"] == "host"
        assert _flag(svc["command"], "--node-ip-address") == "10.0.0.5"
        assert sorted(svc["extra_hosts"]) == ["mlflow:10.0.0.5", "postgres:10.0.0.5"]
    assert _flag(services["ray-worker"]["command"], "--address") == "10.0.0.5:6379"
    assert services["ray-head"]["ports"] == []  # host networking publishes nothing itself
    published = {n: svc["ports"] for n, svc in services.items() if svc.get("ports")}
    assert published == {"postgres": ["10.0.0.5:5432:5432"], "mlflow": ["10.0.0.5:5000:5000"]}
    with pytest.raises(AssertionError, match="HPO_HOST_IP is required"):
        _compose(_dotenv(ENV_EXAMPLE), MULTIHOST)


def test_env_example_holds_every_variable_and_secrets_stay_out_of_git() -> None:
    text = COMPOSE.read_text()
    used = {m.group(1) for m in _VAR.finditer(text)}
    required = {m.group(1) for m in _VAR.finditer(text) if m.group(2) in (":?", "?")}
    example = _dotenv(ENV_EXAMPLE)
    assert used <= set(example), f"missing from .env.example: {used - set(example)}"
    assert {"POSTGRES_PASSWORD", "RAY_AUTH_TOKEN", "HPO_TOKEN"} <= required
    assert ".env" in (ROOT / ".dockerignore").read_text().split()
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", ".env"], cwd=ROOT, capture_output=True
    ).returncode
    assert ignored == 0, ".env must be ignored by git"
    with pytest.raises(AssertionError, match="POSTGRES_PASSWORD is required"):
        _compose({k: v for k, v in example.items() if k != "POSTGRES_PASSWORD"})


def test_only_the_dashboard_and_ray_client_are_published_on_loopback() -> None:
    services = _compose()["services"]
    published = {name: svc["ports"] for name, svc in services.items() if svc.get("ports")}
    assert set(published) == {"dashboard", "ray-head"}
    for ports in published.values():
        assert all(str(p).startswith("127.0.0.1:") for p in ports), ports
    dash = services["dashboard"]
    assert dash["ports"][0].rsplit(":", 1)[1] == _flag(dash["command"], "--port")
    head = services["ray-head"]
    assert head["ports"][0].rsplit(":", 1)[1] == _flag(head["command"], "--ray-client-server-port")
    assert services["postgres"]["volumes"][0].startswith("pgdata:")
    assert "healthcheck" in services["postgres"]
    gpu = services["ray-worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"]


# -- issue 17, item 18 --------------------------------------------------------------------


def test_a_cpu_worker_variant_and_workers_wait_for_a_healthy_head() -> None:
    services = _compose()["services"]
    gpu, cpu = services["ray-worker"], services["ray-worker-cpu"]
    assert gpu["profiles"] == ["gpu"] and cpu["profiles"] == ["cpu"]
    assert "deploy" not in cpu  # runs where there is no NVIDIA device
    assert cpu["command"] == gpu["command"] and cpu["environment"] == gpu["environment"]
    for worker in (gpu, cpu):
        assert worker["depends_on"] == {"ray-head": {"condition": "service_healthy"}}
    assert services["ray-head"]["healthcheck"]["test"][1:3] == ["ray", "health-check"]
    assert _dotenv(ENV_EXAMPLE)["COMPOSE_PROFILES"] == "gpu"
    layered = _multihost()["services"]
    assert layered["ray-worker-cpu"] == layered["ray-worker"]  # host networking for both


def test_no_password_on_a_command_line() -> None:
    """A command line is visible to every user of the host (ps) and in `docker inspect`."""
    env = _dotenv(ENV_EXAMPLE)
    secret = env["POSTGRES_PASSWORD"]
    layered = {f"{n} (multihost)": svc for n, svc in _multihost()["services"].items()}
    for name, svc in {**_compose()["services"], **layered}.items():
        for part in [*(svc.get("command") or []), *svc.get("healthcheck", {}).get("test", [])]:
            assert secret not in str(part), name
    mlflow = _compose()["services"]["mlflow"]
    assert mlflow["environment"]["PGPASSWORD"] == secret  # where libpq takes it from
    uri = _flag(mlflow["command"], "--backend-store-uri")
    assert uri == f"postgresql+psycopg://{env['POSTGRES_USER']}@postgres:5432/{env['MLFLOW_DB']}"


def test_the_artifacts_volume_is_writable_by_the_image_user() -> None:
    """A new named volume takes the owner of the image's folder at its mount point: the
    final image makes MLflow's artifact folder and gives it to the user it runs as."""
    text = (ROOT / "Dockerfile").read_text()
    final = re.split(r"^FROM ", text, flags=re.M)[-1]
    user = re.search(r"^USER (\w+)", final, flags=re.M)
    assert user is not None
    mlflow = _compose()["services"]["mlflow"]
    target = _flag(mlflow["command"], "--artifacts-destination")
    assert f"mlartifacts:{target}" in mlflow["volumes"]  # a named volume, not a bind mount
    made = re.search(rf"mkdir -p {re.escape(target)} && chown (\w+):\w+ {re.escape(target)}", final)
    assert made is not None and made.group(1) == user.group(1)
    assert final.index(made.group(0)) < final.index(f"USER {user.group(1)}")


def test_postgres_is_ready_only_over_tcp_with_both_databases(postgres_url: str) -> None:
    """The postgres healthcheck, run as it is against this machine's PostgreSQL (over TCP on
    127.0.0.1, as in the container): not ready while MLflow's database is missing, ready
    once the init script has made it."""
    import psycopg
    from conftest import _admin_conninfo

    test = _compose()["services"]["postgres"]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL" and "-h 127.0.0.1" in test[1]  # TCP, not the socket
    mlflow_db = f"mlflow_ready_{secrets.token_hex(3)}"
    env = {
        **os.environ,
        "POSTGRES_USER": "postgres",
        "POSTGRES_PASSWORD": "any",  # trust auth here
        "POSTGRES_DB": postgres_url.rsplit("/", 1)[1].split("?")[0],
        "MLFLOW_DB": mlflow_db,
    }

    def ready() -> bool:
        return subprocess.run(["sh", "-c", test[1]], env=env, capture_output=True).returncode == 0

    assert not ready()
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{mlflow_db}"')
    try:
        assert ready()
    finally:
        with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{mlflow_db}"')


def _flag(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def _parse(cli: Any, args: list[str]) -> Any:
    """Parse ``args`` with a real Click command group (Typer's vendored Click for hpo),
    running nothing: an unknown option or a bad value raises."""
    sub = cli.commands[args[0]]
    return sub.make_context(args[0], list(args[1:]))


def _hpo_cli() -> Any:
    import typer

    from hpo.cli import _commands, _dashboard  # noqa: F401 - they register the commands
    from hpo.cli._app import app

    return typer.main.get_command(app)


def test_every_command_and_environment_variable_exists_in_the_real_clis() -> None:
    from mlflow.cli import cli as mlflow_cli
    from ray.scripts.scripts import cli as ray_cli

    raw = yaml.safe_load(COMPOSE.read_text())
    services = _compose()["services"]
    clis = {"hpo": _hpo_cli(), "ray": ray_cli, "mlflow": mlflow_cli}
    layered = {f"{n} (multihost)": svc for n, svc in _multihost()["services"].items()}
    for program, bad in [("hpo", ["dashboard", "--prot", "80"]), ("ray", ["start", "--hed"])]:
        with pytest.raises(Exception, match="No such option"):  # the parse is strict
            _parse(clis[program], bad)
    for name, svc in {**services, **layered}.items():
        check = svc.get("healthcheck", {}).get("test", [])
        commands = [svc.get("command"), check[1:] if check[:1] == ["CMD"] else None]
        for command in commands:
            if command is None or command[0] == "python":
                continue
            program, args = command[0], command[1:]
            assert program in clis, f"{name}: unexpected program {program}"
            try:
                _parse(clis[program], args)
            except Exception as e:  # click's and Typer's UsageError alike
                raise AssertionError(
                    f"service {name}: `{' '.join(command)}` is invalid: {e}"
                ) from e

    # The environment hpo reads: HPO_STORAGE and MLFLOW_TRACKING_URI are `hpo run`'s
    # defaults; HPO_STORAGE and HPO_TOKEN are `hpo dashboard`'s.
    def envvars(command: str) -> set[str]:
        cmd = _hpo_cli().commands[command]
        out: set[str] = set()
        for p in cmd.params:
            ev = getattr(p, "envvar", None)
            out |= {ev} if isinstance(ev, str) else set(ev or [])
        return out

    hpo_env = set(raw["x-hpo-env"])
    hpo_read = {k for k in hpo_env if k.startswith(("HPO_", "MLFLOW_"))}
    assert hpo_read <= envvars("run") | {"MLFLOW_TRACKING_URI"}
    assert "HPO_STORAGE" in envvars("run")
    from hpo.tracking._mlflow import resolve_tracking_uri

    os.environ["MLFLOW_TRACKING_URI"], saved = (
        "http://mlflow:5000",
        os.environ.get("MLFLOW_TRACKING_URI"),
    )
    try:
        assert resolve_tracking_uri(None) == "http://mlflow:5000"
    finally:
        if saved is None:
            os.environ.pop("MLFLOW_TRACKING_URI")
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved
    assert set(services["dashboard"]["environment"]) <= envvars("dashboard")


def _documented_hpo_runs() -> list[list[str]]:
    """The `hpo run` commands shown for the service: in docs/deploy.md (the page the README's
    cluster section links) and in the compose file's header, continuation lines joined."""
    page = (ROOT / "docs" / "deploy.md").read_text()
    text = "\n".join(re.findall(r"```bash\n(.*?)```", page, flags=re.S))
    header = [ln[1:] for ln in COMPOSE.read_text().splitlines() if ln.startswith("#")]
    text += "\n" + "\n".join(header)
    out = []
    for line in text.replace("\\\n", " ").splitlines():
        if "hpo run" in line:
            out.append(shlex.split(line[line.index("hpo run") :].split("'")[0], comments=True))
    return out


def test_the_documented_hpo_run_commands_parse_with_the_real_cli() -> None:
    commands = _documented_hpo_runs()
    assert len(commands) >= 2, commands
    for command in commands:
        try:
            _parse(_hpo_cli(), command[1:])
        except Exception as e:
            raise AssertionError(f"`{' '.join(command)}` is invalid: {e}") from e
    flags = {a for c in commands for a in c if a.startswith("--")}
    wanted = {"--workers", "--gpus-per-trial", "--ray-address", "--storage", "--mlflow-uri"}
    assert wanted <= flags


def test_dockerfile_is_multi_stage_non_root_with_cuda_torch() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    assert len(stages) >= 2, "build and final stages"
    final = stages[-1]
    assert "COPY --from=build" in final
    assert re.search(r"^USER (?!root)\w+", final, flags=re.M), "the final image runs as a user"
    assert not re.search(r"apt-get|build-essential|gcc|pip install", final), "no build tools"
    assert re.search(r"TORCH_INDEX=https://download.pytorch.org/whl/cu\d+", text)
    assert '"/src[postgres,ray]"' in text
    for copied in re.findall(r"^COPY (?!--)(\S+) /src/", text, flags=re.M):
        assert (ROOT / copied).exists(), copied


# -- 2. the same services as plain processes ----------------------------------------------

SPACE = """
description: a small MLP search for the deployment test
model: mlp
dataset: mnist
metric: val_accuracy
direction: maximize
trials: 3
budget: {epochs: 1, max_train_images: 1000}
params:
  lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}
  units_1: {type: int, low: 16, high: 64, log: true}
  layers: {type: int, low: 1, high: 2}
"""


# The compose network's service names, for processes in the test's namespace: `ip netns exec`
# mounts /etc/netns/NAME/hosts over /etc/hosts, so the compose file's URLs (mlflow:5000,
# ray-head:6379) are used exactly as written, Host headers included.
SERVICE_HOSTS = ("mlflow", "ray-head", "dashboard")


def _localise(value: str, tmp: Path) -> str:
    """What the compose network and volumes give a container, for a process on this host:
    PostgreSQL (which listens outside the namespace) is reached through its Unix socket, and
    volumes become folders; every other service name resolves to the namespace's loopback."""
    value = re.sub(r"@postgres:5432/([\w-]+)", rf"@/\1?host={PG_SOCKET}", value)
    return value.replace("/mlartifacts", str(tmp / "mlartifacts"))


@pytest.fixture
def deployment(tmp_path: Path, _pg_reason: str | None) -> Iterator[dict[str, Any]]:
    reason = netns_reason() or _pg_reason
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the deployment test needs a network namespace and PostgreSQL: {reason}")
        pytest.skip(reason)
    import psycopg
    from conftest import _admin_conninfo

    tag = secrets.token_hex(3)
    env = {
        "POSTGRES_USER": "postgres",  # this machine's server trusts local connections
        "POSTGRES_PASSWORD": "unused-here",
        "POSTGRES_DB": f"hpo_deploy_{tag}",
        "MLFLOW_DB": f"mlflow_deploy_{tag}",
        "RAY_AUTH_TOKEN": secrets.token_hex(16),
        "HPO_TOKEN": secrets.token_hex(16),
    }
    # The postgres service's own work: the hpo database, and its init script's MLflow one.
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        for db in (env["POSTGRES_DB"], env["MLFLOW_DB"]):
            conn.execute(f'CREATE DATABASE "{db}"')
    services = _compose(env)["services"]
    # Ray's session folders (and their logs) for this test alone, short enough for the
    # Unix socket paths Ray makes under it.
    ray_tmp = Path(f"/tmp/hpo-ray-{tag}")
    ray_tmp.mkdir()
    ns = NetNS()
    etc = Path("/etc/netns") / ns.name
    etc.mkdir(parents=True)
    (etc / "hosts").write_text(f"127.0.0.1 localhost {' '.join(SERVICE_HOSTS)}\n::1 localhost\n")
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str) -> None:
        svc = services[name]
        svc_env = {
            k: _localise(str(v), tmp_path) for k, v in (svc.get("environment") or {}).items()
        }
        command = [_localise(str(a), tmp_path) for a in svc["command"]]
        program = str(Path(PYTHON).with_name(command[0]))  # the venv's hpo, ray, mlflow
        log = open(tmp_path / f"{name}-{len(procs)}.log", "wb")  # noqa: SIM115
        procs.append(
            subprocess.Popen(
                ns.cmd([program, *command[1:]]),
                env={**os.environ, **svc_env, "HPO_OFFLINE": "1", "RAY_TMPDIR": str(ray_tmp)},
                cwd=tmp_path,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def alive() -> None:
        for proc in procs:
            if proc.poll() is not None:
                logs = "\n".join(
                    f"{p.name}: {p.read_text()[-1500:]}" for p in tmp_path.glob("*.log")
                )
                raise AssertionError(f"a service exited ({proc.args}):\n{logs}")

    def healthy(name: str, timeout: float = 180) -> None:
        test = services[name]["healthcheck"]["test"]
        assert test[0] == "CMD"
        program = PYTHON if test[1] == "python" else str(Path(PYTHON).with_name(test[1]))
        svc_env = {
            k: _localise(str(v), tmp_path)
            for k, v in (services[name].get("environment") or {}).items()
        }
        check_env = {**os.environ, **svc_env, "RAY_TMPDIR": str(ray_tmp)}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            alive()
            check = subprocess.run(ns.cmd([program, *test[2:]]), capture_output=True, env=check_env)
            if check.returncode == 0:
                return
            time.sleep(1)
        logs = "\n".join(p.read_text()[-1500:] for p in tmp_path.glob(f"{name}-*.log"))
        raise AssertionError(f"{name} did not become healthy:\n{logs}")

    try:
        (tmp_path / "mlartifacts").mkdir()
        start("mlflow")
        start("ray-head")
        start("dashboard")
        healthy("mlflow")
        healthy("dashboard")
        healthy("ray-head")  # what the workers wait for
        start("ray-worker-cpu")  # a second node joins the head
        time.sleep(2)
        alive()
        yield {"ns": ns, "env": env, "services": services, "tmp": tmp_path, "ray_tmp": ray_tmp}
    finally:
        ns.close()
        shutil.rmtree(etc, ignore_errors=True)
        shutil.rmtree(ray_tmp, ignore_errors=True)
        with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
            for db in (env["POSTGRES_DB"], env["MLFLOW_DB"]):
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (db,),
                )
                conn.execute(f'DROP DATABASE IF EXISTS "{db}"')


def _in_ns(ns: NetNS, code: str, env: dict[str, str] | None = None) -> Any:
    r = subprocess.run(
        ns.cmd([PYTHON, "-c", code]), capture_output=True, text=True, timeout=120, env=env
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def _ray_client_logs(ray_tmp: Path) -> str:
    """The head's Ray client server logs, for a failed connection through ray://."""
    out = []
    for log in sorted(ray_tmp.glob("ray/session_*/logs/ray_client_server*")):
        out.append(f"\n--- {log.name}:\n{log.read_text(errors='replace')[-1500:]}")
    return "".join(out)


def test_the_services_run_a_study_as_plain_processes(deployment: dict[str, Any]) -> None:
    ns: NetNS = deployment["ns"]
    env, tmp, ray_tmp = deployment["env"], deployment["tmp"], deployment["ray_tmp"]
    head_env = {
        k: _localise(str(v), tmp)
        for k, v in deployment["services"]["ray-head"]["environment"].items()
    }
    run_env = {**os.environ, **head_env, "HPO_OFFLINE": "1", "RAY_TMPDIR": str(ray_tmp)}
    # both nodes joined, at the address the compose file gives the worker
    nodes = _in_ns(
        ns,
        "import json, time, ray\nray.init(address='ray-head:6379', logging_level='ERROR')\n"
        "for _ in range(120):\n"
        "    alive = [x for x in ray.nodes() if x['Alive']]\n"
        "    if len(alive) >= 2: break\n"
        "    time.sleep(0.5)\n"
        "print(json.dumps({x['NodeID']: x['Resources'].get('CPU', 0) for x in alive}))",
        run_env,
    )
    assert len(nodes) == 2
    workers = {node for node, cpus in nodes.items() if cpus > 0}
    assert len(workers) == 1, nodes  # the head offers no CPUs: it only schedules
    (tmp / "small.yaml").write_text(SPACE)
    # a driver with the head's environment, joining through the published Ray client port
    r = subprocess.run(
        ns.cmd([PYTHON, "-m", "hpo.cli", "run", "--space", str(tmp / "small.yaml"),
                "--strategy", "random", "--workers", "2", "--ray-address", "ray://127.0.0.1:10001",
                "--no-progress"]),
        env=run_env, cwd=tmp, capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:] + _ray_client_logs(ray_tmp)

    # the study, in the store the compose file names
    store = f"postgresql://postgres@127.0.0.1:5432/{env['POSTGRES_DB']}"
    trials = hpo.load_study("small-random", storage=store).trials
    assert len(trials) == 3 and all(t.state is TrialState.COMPLETE for t in trials)
    assert all(0.0 < (t.value or 0) <= 1.0 and t.intermediate for t in trials)
    assert {t.system_attrs["node_id"] for t in trials} == workers  # trials ran on the worker

    # the runs, in the tracking server the compose file names
    runs = _in_ns(
        ns,
        "import json, mlflow\nc = mlflow.MlflowClient('http://mlflow:5000')\n"
        "e = c.get_experiment_by_name('small-random')\n"
        "rs = c.search_runs([e.experiment_id])\n"
        "print(json.dumps([[r.data.tags.get('hpo.kind'), r.info.status] for r in rs]))",
    )
    assert sorted(s for kind, s in runs if kind == "trial") == ["FINISHED"] * 3
    # the best trial's model, uploaded by the worker through the server to its artifact volume
    assert any(p.name == "MLmodel" for p in (tmp / "mlartifacts").rglob("*")), "no model logged"

    # the dashboard: the page, the study through the API, and the token on writes
    page = _in_ns(
        ns,
        "import json, urllib.request as u, urllib.error as ue\n"
        "base = 'http://127.0.0.1:8080'\n"
        "html = u.urlopen(base + '/', timeout=10).read().decode()\n"
        "studies = json.load(u.urlopen(base + '/api/studies', timeout=10))\n"
        "def post(token):\n"
        "    req = u.Request(base + '/api/studies', method='POST',\n"
        "        data=json.dumps({'name': 'over-http', 'space': {'x': {'type': 'float',\n"
        "        'low': 0, 'high': 1}}, 'strategy': 'random'}).encode(),\n"
        "        headers={'Content-Type': 'application/json',\n"
        "                 **({'Authorization': 'Bearer ' + token} if token else {})})\n"
        "    try:\n"
        "        return u.urlopen(req, timeout=10).status\n"
        "    except ue.HTTPError as e:\n"
        "        return e.code\n"
        f"print(json.dumps({{'html': html[:2000], 'studies': studies,\n"
        f"    'no_token': post(None), 'token': post({env['HPO_TOKEN']!r})}}))",
    )
    assert "<html" in page["html"].lower()
    listed = {s["name"]: s for s in page["studies"]}
    assert listed["small-random"]["n_trials"] == 3
    assert page["no_token"] == 401 and page["token"] == 201
