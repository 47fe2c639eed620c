"""The disk-fill executor: the planning arithmetic, a local directory filled with one file and
emptied again (real files, a few MiB at most, against a capacity of a few MiB: never a share of
the machine's disk), and the commands a pod runs, executed here by the same `sh`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from aiops.subjects.contract import PluginError
from aiops.subjects.faults import diskfill
from aiops.subjects.faults.diskfill import FILL_FILE, MIB, FillParams, Usage

CAP = 8 * MIB


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def fill_params(**kw: int) -> FillParams:
    return FillParams.model_validate({"capacity_bytes": CAP, "max_bytes": CAP, **kw})


# -- planning -----------------------------------------------------------------------------------


def test_plan_fills_up_to_the_percentage_of_what_is_there() -> None:
    usage = Usage(used=30 * MIB, size=100 * MIB, available=70 * MIB)
    assert diskfill.plan(usage, FillParams(percent=90), "d") == 60 * MIB
    assert diskfill.plan(usage, FillParams(percent=30), "d") == 0  # there already
    assert diskfill.plan(usage, FillParams(percent=10), "d") == 0  # over it: nothing


def test_plan_refuses_more_than_max_bytes_before_anything_is_written() -> None:
    usage = Usage(used=0, size=100 * MIB, available=100 * MIB)
    with pytest.raises(
        PluginError,
        match=r"filling d to 50% needs 50.0 MiB, more than "
        r"max_bytes \(10.0 MiB\)",
    ):
        diskfill.plan(usage, FillParams(percent=50, max_bytes=10 * MIB), "d")


def test_plan_never_eats_the_reserve_of_the_real_filesystem() -> None:
    # A capacity larger than what the filesystem has left: the fill would not fit.
    usage = Usage(used=0, size=1024 * MIB, available=100 * MIB)
    with pytest.raises(PluginError, match=r"has 100.0 MiB free, and 64.0 MiB of it is never"):
        diskfill.plan(usage, FillParams(percent=5, capacity_bytes=1024 * MIB), "d")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"percent": 0}, "percent\n  Input should be greater than or equal to 1"),
        ({"percent": 100}, "percent\n  Input should be less than or equal to 99"),
        ({"max_bytes": 65 << 30}, "max_bytes\n  Input should be less than or equal to"),
        ({"capacity_bytes": 1000}, "capacity_bytes\n  Input should be greater than or equal"),
        ({"size": "90%"}, "size\n  Extra inputs are not permitted"),
    ],
)
def test_bad_params_are_refused_by_the_model(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        FillParams.model_validate(params)
    assert message in str(err.value)


# -- a local directory --------------------------------------------------------------------------


async def test_fill_writes_one_allocated_file_to_the_percentage_and_unfill_removes_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "data.db").write_bytes(b"x" * MIB)  # what the member already holds
    before = diskfill.local_usage(tmp_path, CAP)
    done = await diskfill.fill_local(str(tmp_path), fill_params(percent=75))
    fill = tmp_path / FILL_FILE
    st = fill.stat()
    assert done.ok and f"wrote {fill}" in done.message and "75% full" in done.message
    # Allocated for real (not a sparse file): the disk holds those blocks.
    assert st.st_blocks * 512 >= st.st_size
    after = diskfill.local_usage(tmp_path, CAP)
    assert after.percent() >= 75 > before.percent()
    assert listing(tmp_path) == [FILL_FILE, "data.db"]
    # Injected again: still one file, planned afresh (not a second fill on top).
    await diskfill.fill_local(str(tmp_path), fill_params(percent=75))
    assert abs(fill.stat().st_size - st.st_size) <= 64 * 1024
    for expected in (f"removed {fill}", f"no {fill}: nothing to remove"):
        undone = await diskfill.unfill_local(str(tmp_path))
        assert undone.ok and undone.message == expected
    assert listing(tmp_path) == ["data.db"]


async def test_fill_says_so_when_the_directory_is_full_enough_already(tmp_path: Path) -> None:
    (tmp_path / "data.db").write_bytes(b"x" * (5 * MIB))
    done = await diskfill.fill_local(str(tmp_path), fill_params(percent=50))
    assert "nothing written" in done.message and not (tmp_path / FILL_FILE).exists()


async def test_fill_of_the_filesystem_is_capped_by_max_bytes(tmp_path: Path) -> None:
    # 99% of this machine's disk is far more than 1 MiB: refused, and nothing written.
    with pytest.raises(PluginError, match="more than max_bytes"):
        await diskfill.fill_local(str(tmp_path), FillParams(percent=99, max_bytes=MIB))
    assert listing(tmp_path) == []


async def test_fill_refuses_what_is_not_a_plain_directory_or_file(tmp_path: Path) -> None:
    with pytest.raises(PluginError, match="is not an absolute path"):
        await diskfill.fill_local("relative/dir", fill_params())
    with pytest.raises(PluginError, match="does not exist or is not a directory"):
        await diskfill.fill_local(str(tmp_path / "absent"), fill_params())
    target = tmp_path / "precious"
    target.write_text("keep")
    (tmp_path / FILL_FILE).symlink_to(target)
    for call in (
        diskfill.fill_local(str(tmp_path), fill_params()),
        diskfill.unfill_local(str(tmp_path)),
    ):
        with pytest.raises(PluginError, match="is not a regular file: not the fill file"):
            await call
    assert target.read_text() == "keep"


# -- in a pod: the same scripts, run by this machine's sh ---------------------------------------


def run(argv: list[str], path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path} if path else None
    return subprocess.run(argv, capture_output=True, text=True, check=False, env=env)


@pytest.mark.parametrize("with_fallocate", [True, False])
def test_pod_scripts_fill_read_and_clear(tmp_path: Path, with_fallocate: bool) -> None:
    path = None
    if not with_fallocate:  # a busybox image without fallocate: head writes the zeros
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        for tool in ("sh", "head", "rm", "df", "du"):
            (bin_dir / tool).symlink_to(shutil.which(tool) or tool)
        path = str(bin_dir)
    data = tmp_path / "data"
    data.mkdir()
    assert run(diskfill.fill_argv(str(data), 3 * MIB), path).returncode == 0
    assert (data / FILL_FILE).stat().st_size == 3 * MIB
    usage = diskfill.parse_df(run(diskfill.df_argv(str(data)), path).stdout)
    assert usage.size > 0 and 0 < usage.percent() <= 100
    assert diskfill.parse_du(run(diskfill.du_argv(str(data)), path).stdout) >= 3 * MIB
    cleared = [run(diskfill.clear_argv(str(data)), path).stdout.strip() for _ in range(2)]
    assert cleared == ["removed", "absent"]
    assert list(data.iterdir()) == []


def test_pod_clear_script_leaves_a_link_alone(tmp_path: Path) -> None:
    (tmp_path / "precious").write_text("keep")
    (tmp_path / FILL_FILE).symlink_to(tmp_path / "precious")
    done = run(diskfill.clear_argv(str(tmp_path)))
    assert done.returncode == 3 and "not a regular file" in done.stderr
    assert (tmp_path / "precious").read_text() == "keep"


def test_pod_scripts_take_the_path_as_an_argument_not_as_code(tmp_path: Path) -> None:
    hostile = tmp_path / "$(touch pwned)"
    hostile.mkdir()
    run(diskfill.fill_argv(str(hostile), 1024))
    run(diskfill.clear_argv(str(hostile)))
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


@pytest.mark.parametrize(
    ("out", "used", "available"),
    [
        (
            "Filesystem 1024-blocks Used Available Capacity Mounted on\n"
            "/dev/sda1 1000 250 750 25% /data\n",
            250 * 1024,
            750 * 1024,
        ),
        # busybox, and a device name with a space
        (
            "Filesystem           1024-blocks    Used Available Capacity Mounted on\n"
            "overlay fs          2000      1000      1000  50% /\n",
            1000 * 1024,
            1000 * 1024,
        ),
    ],
)
def test_parse_df(out: str, used: int, available: int) -> None:
    assert diskfill.parse_df(out) == Usage(used=used, size=used + available, available=available)


def test_parse_refuses_what_it_cannot_read() -> None:
    with pytest.raises(PluginError, match="cannot read df's answer"):
        diskfill.parse_df("df: /data: No such file or directory")
    with pytest.raises(PluginError, match="cannot read du's answer"):
        diskfill.parse_du("")
