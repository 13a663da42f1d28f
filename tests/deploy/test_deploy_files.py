"""test_deploy_files.py: what can be checked of the deployment files without a Docker engine or a
Kubernetes cluster.  The Docker entrypoint starts a real rosa-server configured by environment;
the runtime package list covers every shared library the binaries load; the Dockerfiles build
with the CI scripts; the compose file and the Kubernetes manifests parse and are consistent
(GPU requests, /health probes, selectors, the router's proxy settings equal deploy/nginx's)."""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "server"))
from srvtest import SERVER, SRC, run  # noqa: E402

CLI = os.environ.get("ROSA_CLI", os.path.join(SRC, "build", "clients", "rosa-cli"))
DEPLOY = os.path.join(SRC, "deploy")


def http(url, body=None, headers=None):
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read()), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), dict(e.headers)


def test_entrypoint_maps_environment_to_flags():
    tmp = tempfile.mkdtemp(prefix="rosa-ep-")
    env = dict(os.environ, ROSA_SERVER_BIN=SERVER, ROSA_HOST="127.0.0.1", ROSA_PORT="0",
               ROSA_REPLICA_ID="ep-1", ROSA_API_KEY="k9", ROSA_MAX_TOKENS="3",
               ROSA_CACHE_DIR=os.path.join(tmp, "demo"), ROSA_LOG_FORMAT="json",
               ROSA_DEVICE="cpu", ROSA_BITS="2", ROSA_MODE="pre_attn")
    log = open(os.path.join(tmp, "log"), "w+")
    p = subprocess.Popen([os.path.join(DEPLOY, "docker-entrypoint.sh"), "--model-name", "demo-x"],
                         env=env, stdout=log, stderr=log)
    try:
        port, deadline = None, time.time() + 60
        while port is None and time.time() < deadline and p.poll() is None:
            log.seek(0)
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", log.read())
            port = m and int(m.group(1))
            time.sleep(0.05)
        assert port, open(log.name).read()
        log.seek(0)
        first = log.readline()
        assert json.loads(first)  # ROSA_LOG_FORMAT=json reached the server
        base = f"http://127.0.0.1:{port}"
        while time.time() < deadline and http(base + "/health")[0] != 200:
            time.sleep(0.05)
        auth = {"Authorization": "Bearer k9"}
        assert http(base + "/v1/models")[0] == 401  # ROSA_API_KEY, read by the server
        st, r, h = http(base + "/v1/models", headers=auth)
        assert st == 200 and r["data"][0]["id"] == "demo-x", r  # flags after the environment
        assert h.get("X-Rosa-Replica") == "ep-1", h
        rosa = r["data"][0]["rosa"]  # ROSA_BITS / ROSA_MODE became --rosa-bits / --rosa-mode
        assert rosa["bits_per_route"] == 2 and rosa["inject_mode"] == "pre_attn", r
        st, r, _ = http(base + "/v1/completions", {"prompt": [65], "max_tokens": 4}, auth)
        assert st == 400 and r["error"]["param"] == "max_tokens", r  # ROSA_MAX_TOKENS=3
        assert "k9" not in open(f"/proc/{p.pid}/cmdline", "rb").read().decode(errors="replace")
    finally:
        p.terminate()
        assert p.wait(30) == 0
        shutil.rmtree(tmp, ignore_errors=True)


def test_entrypoint_refuses_renamed_variables():
    for old, new in (("ROSA_BITS_PER_ROUTE", "ROSA_BITS"), ("ROSA_INJECT_MODE", "ROSA_MODE")):
        env = dict(os.environ, ROSA_SERVER_BIN="true", **{old: "4"})
        q = subprocess.run([os.path.join(DEPLOY, "docker-entrypoint.sh")], env=env,
                           capture_output=True, text=True, timeout=30)
        assert q.returncode == 2 and f"{old} was renamed: use {new}" in q.stderr, q


def script_packages(mode):
    text = open(os.path.join(DEPLOY, "install-deps.sh")).read()
    lists = re.findall(r"pkgs=\(([^)]*)\)", text)
    assert len(lists) == 2, lists
    return set((lists[0] if mode == "runtime" else lists[1]).split())


def owner_package(path):
    for cand in (path, "/usr" + path if path.startswith("/lib") else path):
        p = subprocess.run(["dpkg", "-S", cand], capture_output=True, text=True)
        if p.returncode == 0:
            return p.stdout.split(":")[0]
    return None


def test_runtime_packages_cover_the_binaries():
    if not shutil.which("dpkg") or not shutil.which("ldd"):
        print("no dpkg/ldd: runtime package check not possible here")
        return
    runtime = script_packages("runtime")
    base = {"libc6", "libgcc-s1"}
    for binary in (SERVER, CLI):
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]",
                            subprocess.run(["readelf", "-d", binary], capture_output=True,
                                           text=True).stdout)
        ldd = dict(re.findall(r"^\s*(\S+) => (\S+)", subprocess.run(
            ["ldd", binary], capture_output=True, text=True).stdout, re.M))
        for lib in needed:
            if lib.startswith(("libasan", "libubsan")):
                continue  # sanitizer builds only
            if lib.startswith(("libcudart", "libcublas", "libcuda.")):
                continue  # CUDA builds: carried by the nvidia/cuda runtime base image
            pkg = owner_package(ldd.get(lib, ""))
            assert pkg, (binary, lib)
            assert pkg in runtime | base, f"{binary} loads {lib} from {pkg}: add it to --runtime"


def dockerfile(name):
    return open(os.path.join(DEPLOY, name)).read()


def test_dockerfiles():
    for name, cuda in (("Dockerfile", "ON"), ("Dockerfile.cpu", "OFF")):
        d = dockerfile(name)
        froms = re.findall(r"^FROM (\S+)", d, re.M)
        assert len(froms) == 2, froms  # build stage, runtime stage
        if cuda == "ON":
            assert "devel" in froms[0] and "runtime" in froms[1], froms
        assert "deploy/install-deps.sh &&" in d and "install-deps.sh --runtime" in d
        assert ("ROSA_DEVICE=cuda" in d) == (cuda == "ON"), name
        assert re.search(rf"ROSA_CUDA={cuda} .*deploy/build\.sh", d), name
        users = re.findall(r"^USER (\S+)", d, re.M)
        assert users and users[-1] not in ("root", "0"), users
        assert re.search(r"^HEALTHCHECK .*\n.*curl -fsS \"http://127\.0\.0\.1:\$\{ROSA_PORT\}/health\"",
                         d, re.M), name
        assert re.search(r'^VOLUME \[.*"/models"', d, re.M)
        for src in re.findall(r"^COPY (?!--from)(\S+) ", d, re.M):
            assert src == "." or os.path.exists(os.path.join(SRC, src)), (name, src)
        assert "docker-entrypoint.sh" in re.findall(r"^ENTRYPOINT (.*)", d, re.M)[0]
        hadolint = shutil.which("hadolint")
        if hadolint:
            p = subprocess.run([hadolint, os.path.join(DEPLOY, name)], capture_output=True,
                               text=True)
            assert p.returncode == 0, p.stdout
    ignore = open(os.path.join(SRC, ".dockerignore")).read().split()
    assert "build*/" in ignore and ".git/" in ignore


def test_compose_file():
    c = yaml.safe_load(open(os.path.join(DEPLOY, "docker-compose.yml")))
    rosa = c["services"]["rosa"]
    dev = rosa["deploy"]["resources"]["reservations"]["devices"][0]
    assert dev["capabilities"] == ["gpu"] and dev["driver"] == "nvidia"
    assert any(v.endswith(":/models:ro") for v in rosa["volumes"])
    assert "ROSA_API_KEY" in rosa["environment"]
    assert os.path.exists(os.path.join(SRC, rosa["build"]["context"].replace("..", "."),
                                       "deploy", "Dockerfile"))
    for v in c["services"]["router"]["volumes"]:
        assert os.path.exists(os.path.join(DEPLOY, v.split(":")[0])), v


def directives(text):
    out = []
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if line:
            out.append(" ".join(line.split()))
    return out


def test_kubernetes_manifests():
    docs = []
    for f in sorted(glob.glob(os.path.join(DEPLOY, "k8s", "*.yaml"))):
        if f.endswith("kustomization.yaml"):
            continue
        docs += [d for d in yaml.safe_load_all(open(f)) if d]
    by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    dep = by[("Deployment", "rosa-server")]
    pod = dep["spec"]["template"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    ctr = pod["spec"]["containers"][0]
    assert ctr["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    ports = {p["name"]: p["containerPort"] for p in ctr["ports"]}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        g = ctr[probe]["httpGet"]
        assert g["path"] == "/health" and g["port"] in ports, (probe, g)
    env = {e["name"] for e in ctr["env"]}
    assert {"ROSA_API_KEY", "ROSA_REPLICA_ID", "ROSA_MODEL"} <= env
    assert any(m["mountPath"] == "/models" for m in ctr["volumeMounts"])
    headless = by[("Service", "rosa-server-headless")]
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    cm = by[("ConfigMap", "rosa-router")]["data"]
    shipped = open(os.path.join(DEPLOY, "nginx", "rosa-proxy.conf")).read()
    assert directives(cm["rosa-proxy.conf"]) == directives(shipped), "router drifted from deploy/nginx"
    assert "hash $http_x_session_id consistent;" in cm["nginx.conf"]
    assert "rosa-server-headless." in cm["nginx.conf"] and "/health" not in cm["nginx.conf"]
    router = by[("Deployment", "rosa-router")]
    svc = by[("Service", "rosa")]
    assert svc["spec"]["selector"].items() <= router["spec"]["template"]["metadata"]["labels"].items()
    kust = yaml.safe_load(open(os.path.join(DEPLOY, "k8s", "kustomization.yaml")))
    assert sorted(kust["resources"]) == sorted(
        os.path.basename(f) for f in glob.glob(os.path.join(DEPLOY, "k8s", "*.yaml"))
        if not f.endswith("kustomization.yaml"))
    kubectl = shutil.which("kubectl")
    if kubectl:  # offline: kustomize builds the objects without a cluster
        p = subprocess.run([kubectl, "kustomize", os.path.join(DEPLOY, "k8s")],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert len([d for d in yaml.safe_load_all(p.stdout) if d]) == len(docs)
    shipped_conf = open(os.path.join(DEPLOY, "nginx", "nginx.conf")).read()
    assert "hash $http_x_session_id consistent;" in shipped_conf


if __name__ == "__main__":
    run([test_entrypoint_maps_environment_to_flags, test_entrypoint_refuses_renamed_variables,
         test_runtime_packages_cover_the_binaries,
         test_dockerfiles, test_compose_file, test_kubernetes_manifests])
