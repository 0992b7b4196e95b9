"""Sweeps on a real Dask cluster: a ``dask scheduler`` and two ``dask worker --nthreads 1`` processes started
on 127.0.0.1, as they would run on a ministry's cluster (docs/cluster.md), driven through
``planner sweep --scheduler``; and the parts that let workers on other machines run without the client's
filesystem."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
from servers import free_port  # tests/servers.py
from typer.testing import CliRunner

import planner.sweep as sweep_module
from planner.cli import app
from planner.scenario import load_scenario
from planner.sweep import SweepError, input_files, run_sample, worker_environment

ROOT = Path(__file__).resolve().parents[1]
DASK = Path(sys.executable).with_name("dask")


def _small_scenario(folder: Path) -> Path:
    """ncfd_expansion (three groups, a few dozen candidates) with one solver thread and a short time limit."""
    path = folder / "small.yaml"
    path.write_text(f"extends: {ROOT / 'scenarios' / 'ncfd_expansion.yaml'}\nname: small_cluster_sweep\n"
                    "solver:\n  time_limit_s: 30\n  threads: 1\n", encoding="utf-8")
    return path


class DaskProcesses:
    """``dask scheduler`` and ``dask worker`` processes started for one test, from the test's own environment
    (the workers import the same planner; PYTHONPATH puts this checkout first, as for the test process)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH"))
                                                                   if p)}

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = (self.folder / f"{name}.log").open("wb")
        proc = subprocess.Popen([str(DASK), *args], cwd=self.folder, env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def scheduler(self) -> None:
        self._start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard"])

    def worker(self, name: str) -> None:
        self._start(name, ["worker", self.address, "--nthreads", "1", "--nworkers", "1", "--name", name,
                           "--host", "127.0.0.1", "--no-dashboard", "--local-directory", str(self.folder / name)])

    def tree(self) -> list[psutil.Process]:
        """Every process started, with its children (a worker's nanny starts the worker process)."""
        out = []
        for p in self.procs:
            try:
                ps = psutil.Process(p.pid)
                out += [ps, *ps.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        return out

    def kill_left(self) -> None:
        """Kill whatever of ours is still running (by pid), after a failed test."""
        for ps in self.tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                ps.kill()
        for p in self.procs:
            p.wait(timeout=30)


def _log(folder: Path) -> str:
    return "\n".join(f"--- {f.name}\n{f.read_text(errors='replace')[-3000:]}" for f in sorted(folder.glob("*.log")))


@pytest.mark.slow  # 50–90 s on the shared 2-core machine (about 40 CPU s): over the default run's ~60 s
def test_sweep_runs_on_separate_dask_scheduler_and_worker_processes(tmp_path, monkeypatch):
    from distributed import Client

    assert DASK.is_file(), f"the dask command is not installed beside {sys.executable}"
    runner = CliRunner()
    scenario = _small_scenario(tmp_path)
    vary = ["--vary", "centre_loss_factor=grid(0.3, 0.7)", "--vary", "road_tariff_rub_per_tkm=grid(3, 5)"]
    cluster = DaskProcesses(tmp_path)
    try:
        # nothing listens at the address yet: a clear error naming --scheduler, exit 1
        monkeypatch.setattr(sweep_module, "CONNECT_TIMEOUT_S", 2.0)
        res = runner.invoke(app, ["sweep", str(scenario), *vary, "--samples", "1", "--scheduler", cluster.address])
        said = " ".join(res.output.split())  # the error console wraps long lines
        assert res.exit_code == 1 and "--scheduler" in said and "no Dask scheduler answers" in said, said
        monkeypatch.setattr(sweep_module, "CONNECT_TIMEOUT_S", 30.0)

        cluster.scheduler()
        # a scheduler without workers: the sweep says so instead of waiting for ever
        res = runner.invoke(app, ["sweep", str(scenario), *vary, "--samples", "1", "--scheduler", cluster.address,
                                  "--wait-workers", "1"])
        said = " ".join(res.output.split())
        assert res.exit_code == 1 and "no Dask worker joined" in said, said + _log(tmp_path)

        cluster.worker("w1")
        cluster.worker("w2")
        with Client(cluster.address, timeout=30) as client:
            client.wait_for_workers(2, timeout=90)
            workers = set(client.scheduler_info()["workers"])
        out = tmp_path / "sweep"
        res = runner.invoke(app, ["sweep", str(scenario), *vary, "--samples", "1", "--scheduler", cluster.address,
                                  "-o", str(out)])
        assert res.exit_code == 0, res.output + _log(tmp_path)
        assert "4 samples on 2 workers" in " ".join(res.output.split())

        samples = pd.read_csv(out / "samples.csv", encoding="utf-8-sig")
        assert len(samples) == 4
        assert set(zip(samples["centre_loss_factor"], samples["road_tariff_rub_per_tkm"], strict=True)) == {
            (0.3, 3.0), (0.3, 5.0), (0.7, 3.0), (0.7, 5.0)}
        # every sample ran on one of the two dask worker processes, and both took part
        ran_on = samples["Dask worker address / адрес исполнителя Dask"]
        assert set(ran_on) == workers
        log = (out / "run.log").read_text(encoding="utf-8")
        assert "HiGHS" in log and all(f"[sample {i}]" in log for i in range(4))  # logs came back to the client

        # each variant's result matches the same variant run here, with no scheduler at all
        sc = load_scenario(scenario)
        cost = "total cost, RUB/yr / годовые затраты, руб./год"
        for row in samples.to_dict("records"):
            local = run_sample(sc.model_dump(exclude={"extends"}), {
                "centre_loss_factor": row["centre_loss_factor"],
                "road_tariff_rub_per_tkm": row["road_tariff_rub_per_tkm"]}, dict(sc.data))
            assert row["status"] == local["status"] == "optimal"
            assert row[cost] == pytest.approx(local["objective"], rel=1e-9)
            assert row["open_sites"] == local["open_sites"]
            assert row["loss reduction total, % / снижение потерь, %"] == pytest.approx(
                local["loss_reduction_pct_total"], rel=1e-9)
        # the figures follow the inputs: a dearer road costs more
        by = samples.set_index(["centre_loss_factor", "road_tariff_rub_per_tkm"])[cost]
        assert by[(0.3, 5.0)] > by[(0.3, 3.0)]

        # clean shutdown: the scheduler stops its workers; every process we started (nannies' children too) ends
        started = cluster.tree()
        assert len(started) >= 5  # scheduler, two nannies, two worker processes
        with Client(cluster.address, timeout=30) as client:
            client.shutdown()
        for p in cluster.procs:
            p.wait(timeout=60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(ps.is_running() and ps.status() != psutil.STATUS_ZOMBIE
                                                  for ps in started):
            time.sleep(0.2)
        assert not [ps.pid for ps in started if ps.is_running() and ps.status() != psutil.STATUS_ZOMBIE]
    finally:
        cluster.kill_left()


def test_user_files_travel_with_the_tasks(tmp_path):
    """A worker on another machine does not see the client's files: the sample reads the copy the client
    shipped, and gives the same result as a run on the file itself."""
    user = tmp_path / "mine"
    user.mkdir()
    shutil.copy(ROOT / "planner" / "data" / "embedded" / "existing_centres.csv", user / "existing_centres.csv")
    scenario = _small_scenario(tmp_path)
    scenario.write_text(scenario.read_text(encoding="utf-8") + "data:\n  existing_centres: mine/existing_centres.csv\n",
                        encoding="utf-8")
    sc = load_scenario(scenario)
    d = sc.model_dump(exclude={"extends"})
    here = run_sample(d, {"centre_loss_factor": 0.4}, dict(sc.data))
    shipped = input_files(d, dict(sc.data))
    assert list(shipped) == [str(user / "existing_centres.csv")]
    shutil.rmtree(user)  # as on a worker machine: the client's path does not exist
    there = run_sample(d, {"centre_loss_factor": 0.4}, dict(sc.data), inputs=shipped)
    assert there["status"] == "optimal", "\n".join(there["log"][-25:])
    assert there["objective"] == pytest.approx(here["objective"], rel=1e-9)
    assert there["open_sites"] == here["open_sites"]
    with pytest.raises(SweepError, match="data.existing_centres"):
        input_files(d, dict(sc.data))  # the client names the field whose file it cannot read


def test_a_worker_with_other_code_refuses_the_sample():
    theirs = {**worker_environment(), "code_sha256": "0" * 64}
    with pytest.raises(SweepError, match="code_sha256.*same orc-planner version"):
        run_sample({"name": "x"}, {}, {}, expected=theirs)


def test_shipped_files_land_in_a_private_folder_and_a_planted_file_is_replaced(tmp_path, monkeypatch):
    """A worker writes the files a sweep ships into its user's own 0700 folder, and never trusts a file someone
    left at the expected path with other bytes."""
    import hashlib
    import os
    import stat
    import tempfile

    from planner import sweep

    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    body = b"region_id,quantity_kt\nRU-STA,1.0\n"
    digest = hashlib.sha256(body).hexdigest()
    planted = tmp_path / f"planner-sweep-inputs-{os.getuid()}" / digest[:20] / "production.csv"
    planted.parent.mkdir(parents=True)
    planted.write_bytes(b"region_id,quantity_kt\nRU-STA,999999\n")
    local = sweep._materialise({"/client/production.csv": body})
    assert Path(local["/client/production.csv"]).read_bytes() == body
    assert stat.S_IMODE((tmp_path / f"planner-sweep-inputs-{os.getuid()}").stat().st_mode) == 0o700
