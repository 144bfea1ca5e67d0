"""Offline checks of the deployment files in deploy/ (no Ray started, no network).

* deploy/ray-cluster.yaml goes through Ray's own cluster-launcher preparation and
  validation (``prepare_config`` then ``validate_config``, the JSON schema shipped with
  the installed Ray), plus what Ray cannot know: token auth on every ``ray start``, a
  legal head port, the gRPC server started on the head.
* deploy/kuberay/raycluster.yaml: the RayCluster fields KubeRay needs, the Ray version
  equal to the installed one, token auth wired from a Secret with the env var names the
  installed Ray reads, the gRPC Service selecting the head Pod on port 50051.
* deploy/Dockerfile: python:3.11-slim, the project installed with pip, Ray pinned to
  the same version, a non-root USER, EXPOSE 50051.
* The ``ella-dist serve`` command lines in both files are parsed by the project's own
  CLI parser once it has a ``serve`` sub-command (skipped before that).
"""

from __future__ import annotations

import copy
import ipaddress
import re
import shlex
from pathlib import Path

import pytest
import ray

yaml = pytest.importorskip("yaml", reason="PyYAML (a dependency of ray) is needed to read the manifests")

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
LAUNCHER = DEPLOY / "ray-cluster.yaml"
KUBERAY = DEPLOY / "kuberay" / "raycluster.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCS = ROOT / "docs" / "deploy.md"

GRPC_PORT = 50051
RAY_WORKER_PORT_RANGE = range(10002, 20000)  # Ray refuses a head port inside it


# --------------------------------------------------------------------------- helpers


def _load(path: Path) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def _load_all(path: Path) -> list[dict]:
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def _one(docs: list[dict], kind: str) -> dict:
    found = [d for d in docs if d.get("kind") == kind]
    assert len(found) == 1, f"expected exactly one {kind} in {KUBERAY.name}, found {len(found)}"
    return found[0]


def _serve_argv(script: str) -> list[str]:
    """The argv of the single ``ella-dist serve`` invocation in a shell snippet."""
    joined = script.replace("\\\n", " ")
    starts = [m.start() for m in re.finditer(r"\bella-dist serve\b", joined)]
    assert len(starts) == 1, f"expected one 'ella-dist serve' command, found {len(starts)}"
    rest = joined[starts[0] :]
    # The command ends at the first shell operator (&, ;, >, |, newline).
    cmd = re.split(r"[&;>|\n]", rest, maxsplit=1)[0]
    return shlex.split(cmd)[1:]  # drop "ella-dist"


def _flag(argv: list[str], name: str) -> str | None:
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def _check_serve_argv(argv: list[str]) -> None:
    assert argv[0] == "serve"
    assert _flag(argv, "--ray-address") == "auto", "the server must attach to the node's Ray cluster"
    assert _flag(argv, "--port") == str(GRPC_PORT)
    for required in ("--checkpoint-dir", "--auth-token-file", "--tls-cert", "--tls-key"):
        assert _flag(argv, required), f"ella-dist serve is started without {required}"


def _cli_parses(argv: list[str]) -> None:
    """Parse with the real CLI once it has a serve sub-command (it is written elsewhere)."""
    cli = pytest.importorskip("ella_dist.cli")
    parser = cli.build_parser()
    subparsers = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    if not subparsers or "serve" not in subparsers[0].choices:
        pytest.skip("ella-dist has no 'serve' sub-command yet; flags checked by name only")
    try:
        parser.parse_args(argv)
    except SystemExit as exc:  # argparse reports unknown/invalid flags this way
        pytest.fail(f"ella-dist rejects the deployed command line {argv}: exit {exc.code}")


def _installed_ray_auth_env_vars() -> set[str]:
    """Token-auth env var names that the installed Ray really reads.

    RAY_AUTH_MODE is read in Python; RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH by the C++
    AuthenticationTokenLoader, so look for them in the compiled _raylet module too.
    """
    from ray._private.authentication.authentication_token_setup import AUTH_MODE_ENV_VAR

    names = {AUTH_MODE_ENV_VAR}
    raylet = next(Path(ray.__file__).parent.glob("_raylet*.so"))
    blob = raylet.read_bytes()
    for candidate in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        # A NUL-terminated string constant of its own (getenv's argument), not a prefix.
        if b"\x00" + candidate.encode() + b"\x00" in blob:
            names.add(candidate)
    return names


# ------------------------------------------------------------- Ray cluster launcher


@pytest.fixture(scope="module")
def launcher() -> dict:
    return _load(LAUNCHER)


def test_launcher_passes_rays_own_validation(launcher):
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(copy.deepcopy(launcher))  # the file as written: schema + required fields
    prepared = prepare_config(copy.deepcopy(launcher))  # what `ray up` does before launching
    validate_config(prepared)
    node_type = prepared["available_node_types"][prepared["head_node_type"]]
    assert node_type["min_workers"] == node_type["max_workers"] == len(launcher["provider"]["worker_ips"])


def test_launcher_local_provider_with_placeholder_ips(launcher):
    provider = launcher["provider"]
    assert provider["type"] == "local"
    ips = [provider["head_ip"], *provider["worker_ips"]]
    assert len(set(ips)) == len(ips) >= 2, "head and at least one distinct worker"
    for ip in ips:
        ipaddress.ip_address(ip)  # a real address literal, not a hostname typo
    assert "PLACEHOLDER" in LAUNCHER.read_text(), "the placeholder IPs must be flagged in the file"


def test_launcher_token_auth_on_every_ray_start(launcher):
    starts = [
        c for c in launcher["head_start_ray_commands"] + launcher["worker_start_ray_commands"] if "ray start" in c
    ]
    assert len(starts) == 2
    for cmd in starts:
        assert "RAY_AUTH_MODE=token" in cmd, f"ray start without token auth: {cmd}"
    # The same token on every node.
    assert "~/.ray/auth_token" in launcher["file_mounts"]
    setup = "\n".join(launcher["setup_commands"])
    assert "RAY_AUTH_MODE=token" in setup, "interactive shells on the nodes (ray status, ...) need the mode too"
    assert re.search(r"ray\[default\]==" + re.escape(ray.__version__), setup), "nodes must run the same Ray"


def test_launcher_head_port_and_serve_command(launcher):
    head = launcher["head_start_ray_commands"]
    i_ray = next(i for i, c in enumerate(head) if "ray start --head" in c)
    port = int(re.search(r"--port[= ](\d+)", head[i_ray]).group(1))
    assert port not in RAY_WORKER_PORT_RANGE, f"Ray refuses head port {port} inside the worker port range"
    worker = next(c for c in launcher["worker_start_ray_commands"] if "ray start" in c)
    assert f"--address=$RAY_HEAD_IP:{port}" in worker
    i_serve = next(i for i, c in enumerate(head) if "ella-dist serve" in c)
    assert i_serve > i_ray, "the server must start after Ray is up"
    assert "RAY_AUTH_MODE=token" in head[i_serve]
    argv = _serve_argv(head[i_serve])
    _check_serve_argv(argv)
    assert _flag(argv, "--host") == "0.0.0.0", "clients on other machines must reach the head"
    _cli_parses(argv)


# ------------------------------------------------------------------------- KubeRay


@pytest.fixture(scope="module")
def kube() -> list[dict]:
    return _load_all(KUBERAY)


@pytest.fixture(scope="module")
def raycluster(kube) -> dict:
    return _one(kube, "RayCluster")


def _ray_container(group: dict) -> dict:
    containers = group["template"]["spec"]["containers"]
    assert containers, "a pod template without containers"
    return containers[0]  # KubeRay: the Ray container is the first one


def _env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def test_raycluster_identity_and_version(raycluster):
    assert raycluster["apiVersion"] == "ray.io/v1"
    assert raycluster["kind"] == "RayCluster"
    assert raycluster["metadata"]["name"]
    assert raycluster["spec"]["rayVersion"] == ray.__version__, "spec.rayVersion must equal the Ray in the image"


def test_raycluster_head_group(raycluster):
    head = raycluster["spec"]["headGroupSpec"]
    params = head["rayStartParams"]
    assert isinstance(params, dict)
    assert all(isinstance(v, str) for v in params.values()), "KubeRay wants rayStartParams values as strings"
    c = _ray_container(head)
    assert c["name"] and c["image"]
    ports = {p["containerPort"]: p.get("name") for p in c["ports"]}
    assert GRPC_PORT in ports and 6379 in ports


def test_raycluster_worker_groups(raycluster):
    groups = raycluster["spec"]["workerGroupSpecs"]
    assert groups
    head_image = _ray_container(raycluster["spec"]["headGroupSpec"])["image"]
    for g in groups:
        assert g["groupName"]
        assert isinstance(g["rayStartParams"], dict)
        for key in ("replicas", "minReplicas", "maxReplicas"):
            assert isinstance(g[key], int), f"{key} must be an integer"
        assert 0 <= g["minReplicas"] <= g["replicas"] <= g["maxReplicas"]
        c = _ray_container(g)
        assert c["image"] == head_image, "learner actors import ella_dist: workers need the same image"


def test_raycluster_token_auth_on_every_ray_container(raycluster):
    known = _installed_ray_auth_env_vars()
    assert {"RAY_AUTH_MODE", "RAY_AUTH_TOKEN"} <= known, f"installed Ray reads {known}"
    groups = [raycluster["spec"]["headGroupSpec"], *raycluster["spec"]["workerGroupSpecs"]]
    secrets = set()
    for g in groups:
        env = _env(_ray_container(g))
        assert env.get("RAY_AUTH_MODE", {}).get("value") == "token"
        ref = env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]
        assert ref["key"] == "auth_token"  # the key KubeRay's own authOptions Secrets use
        secrets.add(ref["name"])
        assert "value" not in env["RAY_AUTH_TOKEN"], "never a literal token in the manifest"
        assert g["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert len(secrets) == 1, "head and workers must share one token"


def test_no_secret_material_committed(kube):
    assert not [d for d in kube if d.get("kind") == "Secret"], "Secrets are created with kubectl, not committed"


def test_head_container_starts_ray_then_the_server(raycluster):
    assert raycluster["metadata"]["annotations"]["ray.io/overwrite-container-cmd"] == "true"
    head = _ray_container(raycluster["spec"]["headGroupSpec"])
    script = "\n".join(head["args"])
    assert "$KUBERAY_GEN_RAY_START_CMD" in script
    assert script.index("$KUBERAY_GEN_RAY_START_CMD") < script.index("ella-dist serve")
    argv = _serve_argv(script)
    _check_serve_argv(argv)
    _cli_parses(argv)
    # Every file the server is pointed at is mounted in the container.
    mounts = [m["mountPath"] for m in head["volumeMounts"]]
    for flag in ("--checkpoint-dir", "--auth-token-file", "--tls-cert", "--tls-key"):
        path = _flag(argv, flag)
        assert any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts), f"{flag} {path} not mounted"
    for group in raycluster["spec"]["workerGroupSpecs"]:
        worker = _ray_container(group)
        assert "$KUBERAY_GEN_RAY_START_CMD" in "\n".join(worker["args"])


def test_checkpoint_volume_shared_by_all_ray_nodes(kube, raycluster):
    pvc = _one(kube, "PersistentVolumeClaim")
    assert "ReadWriteMany" in pvc["spec"]["accessModes"]
    for g in [raycluster["spec"]["headGroupSpec"], *raycluster["spec"]["workerGroupSpecs"]]:
        claims = [
            v["persistentVolumeClaim"]["claimName"]
            for v in g["template"]["spec"]["volumes"]
            if "persistentVolumeClaim" in v
        ]
        assert pvc["metadata"]["name"] in claims


def test_grpc_service_targets_the_head(kube, raycluster):
    svc = _one(kube, "Service")
    assert svc["apiVersion"] == "v1"
    assert svc["spec"]["selector"] == {"ray.io/cluster": raycluster["metadata"]["name"], "ray.io/node-type": "head"}
    (port,) = svc["spec"]["ports"]
    assert port["port"] == GRPC_PORT
    head_ports = {
        p.get("name"): p["containerPort"] for p in _ray_container(raycluster["spec"]["headGroupSpec"])["ports"]
    }
    target = port["targetPort"]
    assert (head_ports.get(target) if isinstance(target, str) else target) == GRPC_PORT


# ---------------------------------------------------------------------- Dockerfile


def _dockerfile_stages() -> list[list[tuple[str, str]]]:
    """[(INSTRUCTION, arguments)] per build stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, args = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            stages.append([])
        assert stages, "instruction before FROM"
        stages[-1].append((instr, " ".join(args.split())))
    return stages


def test_dockerfile_key_lines():
    stages = _dockerfile_stages()
    final = stages[-1]
    base = [a for i, a in final if i == "FROM"][0]
    assert base.split()[0] == "python:3.11-slim"
    assert ("EXPOSE", str(GRPC_PORT)) in final
    users = [a for i, a in final if i == "USER"]
    assert users, "the image must not run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    runs = " && ".join(a for i, a in final if i == "RUN")
    # Ray pinned to the version spec.rayVersion names, with the dashboard bits KubeRay probes.
    assert f'"ray[default]=={ray.__version__}"' in runs
    # The project itself installed with pip: from the wheel built in an earlier stage or from source.
    all_runs = " && ".join(a for stage in stages for i, a in stage if i == "RUN")
    assert re.search(r"pip install [^&]*(ella_dist-\S*\.whl|\s\.(\s|$))", runs + " "), "project not pip-installed"
    if "ella_dist-" in runs:
        assert re.search(r"pip wheel [^&]*\s\.($|\s)", all_runs), "the wheel must be built from the project"
    ignore = DEPLOY / "Dockerfile.dockerignore"
    assert ".venv" in ignore.read_text(), "keep the local venv out of the build context"


def test_dockerfile_user_matches_kuberay_security_context(raycluster):
    user = [a for i, a in _dockerfile_stages()[-1] if i == "USER"][-1]
    uid = int(user.split(":")[0])
    spec = raycluster["spec"]["headGroupSpec"]["template"]["spec"]["securityContext"]
    assert spec["runAsUser"] == uid


# --------------------------------------------------------------------------- docs


def test_deploy_docs_cover_the_essentials():
    text = DOCS.read_text()
    for must in ("ray get-auth-token", "RAY_AUTH_MODE", "kubectl create secret", "--tls-cert", "checkpoint", "ray up"):
        assert must in text, f"docs/deploy.md does not mention {must!r}"
