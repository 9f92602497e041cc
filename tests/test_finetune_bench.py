"""kit.finetune_bench: the kit's fine-tune against TRL and the stock Trainer, each in a fresh
process, and the seed-averaged table."""

from __future__ import annotations

import json
import subprocess

import pytest


def test_benchmark_runs_all_three_peers_and_prints_the_table(capsys):
    from kit.finetune_bench import main

    argv = ["--steps", "1", "--batch-size", "2", "--train-examples", "16", "--eval-examples", "4"]
    assert main([*argv, "--max-seq-len", "160"]) == 0
    out = capsys.readouterr().out
    for peer in ("kit", "trl", "trainer"):
        assert f"\n{peer} " in out
    assert "kit vs trl:" in out and "kit vs trainer:" in out and "load average" in out
    assert "matmul peak now: bf16" in out


def test_benchmark_averages_peers_over_seeds(capsys, monkeypatch):
    from kit import finetune_bench
    from kit.finetune_bench import RESULT_TAG, main, mean_per_peer

    runs = [
        {
            "peer": "kit",
            "seed": 1,
            "eval_loss": 3.0,
            "useful_tokens_per_s": 400.0,
            "s_per_step": 2.0,
            "seconds": 40.0,
            "peak_mem_mb": 4000,
            "steps": 20,
        },
        {
            "peer": "trl",
            "seed": 1,
            "eval_loss": 2.9,
            "useful_tokens_per_s": 100.0,
            "s_per_step": 7.0,
            "seconds": 140.0,
            "peak_mem_mb": 3000,
            "steps": 20,
        },
        {
            "peer": "kit",
            "seed": 2,
            "eval_loss": 2.0,
            "useful_tokens_per_s": 500.0,
            "s_per_step": 1.6,
            "seconds": 32.0,
            "peak_mem_mb": 4200,
            "steps": 20,
        },
        {
            "peer": "trl",
            "seed": 2,
            "eval_loss": 2.2,
            "useful_tokens_per_s": 120.0,
            "s_per_step": 6.0,
            "seconds": 120.0,
            "peak_mem_mb": 3100,
            "steps": 20,
        },
    ]
    kit, trl = mean_per_peer(runs)
    assert (kit["peer"], kit["runs"], kit["eval_losses"]) == ("kit", 2, [3.0, 2.0])
    assert kit["eval_loss"] == 2.5 and kit["useful_tokens_per_s"] == 450.0
    assert kit["peak_mem_mb"] == 4200 and trl["eval_loss"] == pytest.approx(2.55)

    # The seed loop of the command, with each worker's reply stood in for: a real worker of
    # every peer trains in the test above, so this one costs no training.
    def worker(cmd, **kw):
        assert cmd[1:3] == ["-m", "kit.finetune_bench"] and "--only" in cmd  # argv forwarded
        assert cmd[cmd.index("--worker") + 1] == "kit"
        seed = int(cmd[cmd.index("--seed") + 1])
        row = {**runs[0], "eval_loss": 3.0 - seed / 2, "params": 134_515_008}
        return subprocess.CompletedProcess(cmd, 0, RESULT_TAG + json.dumps(row) + "\n", "")

    monkeypatch.setattr(finetune_bench.subprocess, "run", worker)
    assert main(["--only", "kit", "--seeds", "1,2"]) == 0
    out = capsys.readouterr().out
    assert "running kit (seed 1)" in out and "running kit (seed 2)" in out
    assert "kit eval loss per seed (1,2): 2.5000, 2.0000" in out
