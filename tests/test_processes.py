"""Several training processes: the smoke fine-tune under torchrun, two CPU processes (gloo).

The kit splits each length-grouped batch between the processes (accelerate's ``split_batches``),
so a step of two processes trains on the same examples as a step of one, and the losses of the
two runs agree step by step; they differ only in the order of the floating-point sums (and, on
a CPU with bf16, in rounding: 0.01 at most measured on the smoke run, hence 0.03 below).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kit.finetune import FinetuneError, train_adapter

ROOT = Path(__file__).resolve().parent.parent
TORCHRUN = Path(sys.executable).with_name("torchrun")
LOSS_TOLERANCE = 0.03  # per step, two processes against one (see the module docstring)


def _command(out: Path, processes: int, *extra: str) -> list[str]:
    """``python -m kit train`` on the smoke profile, in one process or under torchrun."""
    command = [sys.executable, "-m", "kit", "train", "--profile", "smoke", "--out", str(out)]
    if processes > 1:
        command = [
            str(TORCHRUN),
            f"--nproc_per_node={processes}",
            "--standalone",  # one machine; torchrun binds its own free port (no race for one)
            "--local-addr=127.0.0.1",  # and the processes meet on loopback
            "-m",
            *command[2:],
        ]
    return [*command, *extra]


def _train(out: Path, processes: int, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        _command(out, processes, *extra),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env=os.environ,
    )


def _record(out: Path) -> dict:
    return json.loads((out / "adapter" / "kit-adapter.json").read_text())["info"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The smoke fine-tune in one process and in two: (one, two) output folders and logs."""
    base = tmp_path_factory.mktemp("processes")
    one = _train(base / "one", 1)
    two = _train(base / "two", 2)
    assert one.returncode == 0, one.stderr[-3000:]
    assert two.returncode == 0, two.stderr[-3000:]
    return base / "one", base / "two", two


def test_two_processes_train_the_same_steps_as_one(runs):
    one, two, _ = runs
    a, b = _record(one)["result"], _record(two)["result"]
    assert [s for s, _ in a["losses"]] == [s for s, _ in b["losses"]] == [1, 2, 3, 4, 5, 6]
    diffs = [abs(x - y) for (_, x), (_, y) in zip(a["losses"], b["losses"], strict=True)]
    assert max(diffs) <= LOSS_TOLERANCE, diffs
    # each step is one length-grouped batch, split: a wrong shard shows in that step's loss
    spread = max(x for _, x in a["losses"]) - min(x for _, x in a["losses"])
    assert spread > 10 * LOSS_TOLERANCE
    assert abs(a["eval_losses"][-1][1] - b["eval_losses"][-1][1]) <= LOSS_TOLERANCE
    assert _record(one)["settings"] == _record(two)["settings"]  # the same run, resumable


def test_one_adapter_from_the_main_process(runs):
    _, two, log = runs
    assert sorted(p.name for p in two.iterdir()) == [".training.lock", "adapter", "checkpoints"]
    assert (two / "adapter" / "adapter_model.safetensors").is_file()
    assert log.stdout.count("Adapter saved in") == 1  # the summary comes from the main process
    checkpoints = sorted(p.name for p in (two / "checkpoints").glob("checkpoint-*"))
    assert checkpoints == ["checkpoint-4", "checkpoint-6"]
    # each process's random state, for a resume with the same number of processes
    assert {p.name for p in (two / "checkpoints" / "checkpoint-6").glob("rng_state_*")} == {
        "rng_state_0.pth",
        "rng_state_1.pth",
    }


def test_a_refused_resume_stops_every_process(runs):
    """The main process refuses the resume; the other one stops too, with its message."""
    _, two, _ = runs
    refused = _train(two, 2, "--resume", "--max-steps", "4")
    assert refused.returncode != 0
    assert refused.stderr.count("settings differ") == 1  # said by the main process alone
    assert _record(two)["result"]["steps"] == 6  # the finished adapter is untouched


MAIN_DECIDES = """
from kit.processes import ProcessGroupError, leave_group, main_decides, world_size

def step():
    raise ValueError("boom")

assert main_decides(lambda: world_size()) == 2  # the main process's answer, everywhere
try:
    main_decides(step)
except ValueError as err:
    print(f"main raised: {err}", flush=True)  # one write: the two processes share stdout
except ProcessGroupError as err:
    print(f"other told: {err}", flush=True)
leave_group()  # both are here: exit 0, no abort at exit
"""


def test_the_main_process_shares_its_answer_or_its_error(tmp_path):
    script = tmp_path / "decide.py"
    script.write_text(MAIN_DECIDES)
    command = [
        str(TORCHRUN),
        "--nproc_per_node=2",
        "--standalone",
        "--local-addr=127.0.0.1",
        str(script),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("main raised: boom") == 1
    assert done.stdout.count("other told: The main training process stopped: ValueError: boom") == 1


def test_a_training_holding_the_folder_stops_every_process(tmp_path):
    """The main process is refused the folder's lock before any model loads; the other process
    is told and stops too, instead of waiting for it."""
    from kit.runtime import lock_file

    with (tmp_path / ".training.lock").open("a+") as held:
        assert lock_file(held, wait=False)
        refused = _train(tmp_path, 2)
    assert refused.returncode != 0
    assert refused.stderr.count("Another training is writing into") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".training.lock"]


def _worker(launcher: int, rank: int) -> int:
    """The pid of the process of global ``rank`` that torchrun (``launcher``) started."""
    children = Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split()
    for pid in children:
        if f"RANK={rank}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
            return int(pid)
    raise AssertionError(f"no process of rank {rank} among {children}")


def test_sigterm_stops_both_processes_at_one_step_and_the_rerun_continues(runs, tmp_path):
    """A SIGTERM that reaches one process only (here the second) stops both at the same step,
    with one checkpoint (each process's random state in it), and the same command continues
    there to the losses of the run that was never stopped."""
    one, _, _ = runs
    out = tmp_path / "stopped"
    job = subprocess.Popen(
        _command(out, 2),
        cwd=ROOT,
        env=os.environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: removed whole if the test fails
    )
    try:
        first = out / "checkpoints" / "checkpoint-2" / "trainer_state.json"
        deadline = time.monotonic() + 300
        while not first.is_file() and job.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(_worker(job.pid, 1), signal.SIGTERM)
        stdout, stderr = job.communicate(timeout=120)  # one process left training would hang
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
    assert job.returncode != 0, stderr.decode()[-2000:]
    assert stdout.decode().count("SIGTERM received: stopped at step") == 1  # said once
    stopped = sorted(out.glob("checkpoints/checkpoint-*"), key=lambda p: int(p.name[11:]))[-1]
    assert 2 <= int(stopped.name[11:]) < 6 and not (out / "adapter").exists()
    assert {p.name for p in stopped.glob("rng_state_*")} == {"rng_state_0.pth", "rng_state_1.pth"}
    again = _train(out, 2)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"from {stopped.name}" in again.stdout
    losses = [x for _, x in _record(out)["result"]["losses"]]
    uninterrupted = [x for _, x in _record(one)["result"]["losses"]]
    assert len(losses) == 6
    assert max(abs(a - b) for a, b in zip(losses, uninterrupted, strict=True)) <= LOSS_TOLERANCE


@pytest.mark.timeout(120)  # a check moved after the group forms would wait for 2 more processes
def test_a_batch_that_cannot_be_split_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(FinetuneError, match="batch_size=4 cannot be split between 3"):
        train_adapter(profile="smoke", output_dir=tmp_path)
    assert not any(tmp_path.iterdir())  # refused before anything was written


@pytest.mark.parametrize("steps", ["0", "-3", "many", " "])
def test_the_train_command_refuses_a_bad_number_of_steps(steps, capsys):
    from kit.__main__ import main

    with pytest.raises(SystemExit) as stop:
        main(["train", "--max-steps", steps])
    assert stop.value.code == 2
    assert "--max-steps" in capsys.readouterr().err
