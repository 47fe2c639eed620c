"""The images hack/kind-up.sh builds, checked without a Docker engine.

- Each Dockerfile's COPY sources exist in the build context kind-up gives it, and its
  .dockerignore does not leave them out (Docker's rules: last matching pattern wins, a
  pattern matching a directory excludes what is under it, `!` re-includes).
- What operator/Dockerfile copies holds every package and entry point of the distributions it
  installs (the operator and its plugins), and none of them needs the rate limiter's server.
- The operator image runs `aiops operator run` as the non-root uid the chart expects, with the
  audit directory where the chart mounts the volume, and has kubectl.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from setuptools import find_packages

from tests.unit.charts.helm import REPO, template
from tests.unit.charts.kindstubs import make_stubs

OPERATOR_DOCKERFILE = REPO / "operator" / "Dockerfile"


# --- a small Dockerfile reader ----------------------------------------------------------------


def instructions(path: Path) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) in order, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def stages(path: Path) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions(path):
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, rest))
    return result


def copy_sources(path: Path) -> list[str]:
    """Sources of COPY/ADD from the build context (not --from another stage or image)."""
    sources = []
    for keyword, rest in instructions(path):
        if keyword not in ("COPY", "ADD"):
            continue
        words = json.loads(rest) if rest.startswith("[") else rest.split()
        flags = [w for w in words if w.startswith("--")]
        if any(f.startswith("--from") for f in flags):
            continue
        args = [w for w in words if not w.startswith("--")]
        sources += args[:-1]
    return sources


# --- Docker's .dockerignore rules -------------------------------------------------------------


def _pattern(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(f"^{out}$")


def dockerignore(context: Path) -> list[tuple[bool, re.Pattern[str]]]:
    path = context / ".dockerignore"
    rules = []
    for raw in path.read_text().splitlines() if path.exists() else []:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        line = posixpath.normpath(line.removeprefix("!").strip()).lstrip("/")
        rules.append((negate, _pattern(line)))
    return rules


def excluded(rel: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    parts = rel.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for negate, rx in rules:
        if any(rx.match(c) for c in candidates):
            result = not negate
    return result


def test_dockerignore_reader_follows_dockers_rules(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text(
        "# comment\n.git\n**/__pycache__\n/build\n*.md\n!README.md\n**/*.py[cod]\n"
    )
    rules = dockerignore(tmp_path)
    assert excluded(".git/HEAD", rules) and excluded("a/b/__pycache__/x.pyc", rules)
    assert excluded("build/lib/x.py", rules) and not excluded("operator/build/x.py", rules)
    assert excluded("NOTES.md", rules) and not excluded("README.md", rules)
    assert not excluded("docs/x.md", rules)  # `*` does not cross a /
    assert excluded("x/y.pyc", rules) and not excluded("x/y.py", rules)


# --- what kind-up builds ----------------------------------------------------------------------


def kind_up_builds(tmp_path: Path) -> list[tuple[Path, Path]]:
    """(Dockerfile, context) of every `docker build` hack/kind-up.sh runs."""
    stubs = make_stubs(tmp_path, AIOPS_KIND_KUBECONFIG=tmp_path / "kubeconfig")
    proc = stubs.run(REPO / "hack" / "kind-up.sh")
    assert proc.returncode == 0, proc.stderr
    builds = []
    for c in stubs.calls():
        if c.tool == "docker" and c.has("build"):
            dockerfile = Path(c.argv[c.argv.index("--file") + 1])
            builds.append((dockerfile.resolve(), Path(c.argv[-1]).resolve()))
    assert builds
    return builds


def context_files(context: Path) -> list[str]:
    """The files Docker sends for this context (excluded folders are not walked, as Docker
    does when no `!` rule could bring something back from under them)."""
    rules = dockerignore(context)
    prune = not any(negate for negate, _ in rules)
    out = []
    for dirpath, dirnames, filenames in os.walk(context):
        base = Path(dirpath).relative_to(context).as_posix()
        prefix = "" if base == "." else base + "/"
        if prune:
            dirnames[:] = [d for d in dirnames if not excluded(prefix + d, rules)]
        out += [prefix + f for f in filenames if not excluded(prefix + f, rules)]
    return out


def test_every_copy_source_is_in_its_build_context(tmp_path: Path) -> None:
    builds = kind_up_builds(tmp_path)
    assert (OPERATOR_DOCKERFILE.resolve(), REPO.resolve()) in builds
    for dockerfile, context in builds:
        rules = dockerignore(context)
        files = context_files(context)
        for source in copy_sources(dockerfile):
            rel = posixpath.normpath(source).rstrip("/")
            assert (context / rel).exists(), f"{dockerfile}: COPY {source}: not in {context}"
            assert not excluded(rel, rules), f"{dockerfile}: .dockerignore drops {source}"
            if (context / rel).is_dir():
                assert [f for f in files if f.startswith(rel + "/")], f"{source} arrives empty"


def image_distributions() -> list[str]:
    """What operator/Dockerfile installs: the operator, and the plugins of its PLUGINS."""
    (plugins,) = [
        rest.split("=", 1)[1]
        for keyword, rest in instructions(OPERATOR_DOCKERFILE)
        if keyword == "ARG" and rest.startswith("PLUGINS=")
    ]
    return ["operator", *json.loads(plugins).split()]


def project_of(root: Path, dist: str) -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((root / dist / "pyproject.toml").read_text())
    return project


def test_the_operator_image_gets_every_package_and_entry_point(tmp_path: Path) -> None:
    """Replay operator/Dockerfile's build-stage COPYs from the filtered context, then look for
    what each distribution it installs (the operator and its plugins) holds: the same packages
    as in the repository, every console script's and plugin's module."""
    rules = dockerignore(REPO)
    src = tmp_path / "src"
    for source in copy_sources(OPERATOR_DOCKERFILE):
        rel = posixpath.normpath(source).rstrip("/")
        origin = REPO / rel
        if origin.is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(origin, src / rel)
            continue
        for path in origin.rglob("*"):
            r = path.relative_to(REPO).as_posix()
            if path.is_file() and not excluded(r, rules):
                (src / r).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, src / r)
    plugins: set[str] = set()
    for dist in image_distributions():
        project = project_of(src, dist)
        include = project["tool"]["setuptools"]["packages"]["find"]["include"]
        in_image = sorted(find_packages(str(src / dist), include=include))
        assert in_image == sorted(find_packages(str(REPO / dist), include=include)), dist
        assert in_image, dist
        targets = [*project["project"].get("scripts", {}).values()]
        for group in project["project"].get("entry-points", {}).values():
            targets += group.values()
        for target in targets:
            module = src / dist / target.split(":")[0].replace(".", "/")
            assert module.with_suffix(".py").is_file() or (module / "__init__.py").is_file(), (
                f"{dist}: {target}: its module is not in the image's build context"
            )
        plugins |= set(project["project"].get("entry-points", {}).get("aiops.subjects", {}))
    assert plugins == {"ratelimiter", "tikv"}


# The rate limiter service's server and local stack: never installed with the operator.
# (prometheus-client is the service's too, but the operator serves its own /metrics with it.)
SERVER = {"uvicorn", "starlette", "supervisor"}


def requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=!~;\s]", r, maxsplit=1)[0].lower() for r in requirements}


def test_no_server_dependency_comes_with_the_operator_or_its_plugins() -> None:
    """The operator's distribution and the base dependencies of every plugin the image
    installs have none of the service's; aiops-ratelimiter's `server` extra has them all."""
    for dist in image_distributions():
        deps = requirement_names(project_of(REPO, dist)["project"]["dependencies"])
        assert not deps & SERVER, (dist, deps & SERVER)
    extras = project_of(REPO, "subjects/ratelimiter")["project"]["optional-dependencies"]
    assert requirement_names(extras["server"]) >= SERVER | {"prometheus-client"}


# --- the operator image -----------------------------------------------------------------------


def test_operator_image_runs_the_operator_as_the_chart_expects() -> None:
    all_stages = stages(OPERATOR_DOCKERFILE)
    assert len(all_stages) >= 2, "multi-stage: build tools stay out of the runtime image"
    args = dict(
        rest.split("=", 1)
        for keyword, rest in instructions(OPERATOR_DOCKERFILE)
        if keyword == "ARG" and "=" in rest
    )
    assert args["PYTHON_IMAGE"] == "python:3.11-slim"
    # kubectl: by default the checked download of the `kubectl` stage; hack/images.sh passes
    # an image holding the one hack/tools built.
    assert args["KUBECTL_IMAGE"] == "kubectl"
    for stage in all_stages:
        source = stage[0][1].split()
        if source[0] == "${KUBECTL_IMAGE}":
            assert source[1:] == ["AS", "kubectl-source"]
            continue
        assert source[0] == "${PYTHON_IMAGE}"
    assert [s[0][1] for s in all_stages].count("${PYTHON_IMAGE} AS kubectl") == 1
    final = all_stages[-1]
    (user,) = [rest for keyword, rest in final if keyword == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a numeric non-root uid (runAsNonRoot checks it)"
    (entrypoint,) = [rest for keyword, rest in final if keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["aiops", "operator", "run"]
    copies = [rest for keyword, rest in final if keyword == "COPY"]
    assert any(c.endswith("/usr/local/bin/kubectl") for c in copies), "kubectl action needs it"
    env = " ".join(rest for keyword, rest in final if keyword == "ENV")
    audit_dir = re.search(r"AIOPS_AUDIT_DIR=(\S+)", env)
    assert audit_dir

    chart = template("aiops-operator")
    dep = chart.one("Deployment", "aiops-operator")
    pod = dep["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == int(uid)
    assert pod["securityContext"]["fsGroup"] == int(user.split(":")[1])  # the PVC is writable
    values = yaml.safe_load((REPO / "charts" / "aiops-operator" / "values.yaml").read_text())
    assert values["audit"]["mountPath"] == audit_dir.group(1)


@pytest.mark.parametrize("dockerfile", [OPERATOR_DOCKERFILE], ids=["operator"])
def test_build_stage_installs_the_distributions_not_editable_links(dockerfile: Path) -> None:
    runs = [rest for keyword, rest in instructions(dockerfile) if keyword == "RUN"]
    # At the versions the suite ran with (operator/constraints.txt, tests/unit/test_constraints).
    assert any(
        "pip install -c operator/constraints.txt $dists" in r and 'dists="./operator"' in r
        for r in runs
    )
    assert not any(" -e " in r or "--editable" in r for r in runs)
