"""Benchmark the kit's fine-tune against two peers, as courses teach them (``python -m kit bench
finetune``).

Same data (the bundled style set, the same held-out slice), same steps, batch size, maximum length,
learning rate and LoRA settings, same machine, one after the other, each in a fresh process:

- ``kit``: :func:`kit.finetune.train_adapter` (reply-only loss, length-grouped batches, bf16
  weights where the CPU computes in bf16, the output layer only on reply tokens);
- ``trl``: a stock TRL ``SFTTrainer`` + peft LoRA, every other setting at TRL's defaults
  (conversational dataset, gradient checkpointing on, loss on all tokens; ``use_cpu=True``);
- ``trainer``: a plain transformers ``Trainer`` + peft LoRA with default ``TrainingArguments``
  (chat-template text, ``DataCollatorForLanguageModeling``, loss on all tokens).

Both peers compute in the precision the kit picks on this machine (bf16 mixed precision where
the CPU is faster in bf16, float32 elsewhere), not in TRL's default bf16, which an AVX2-only CPU
emulates at about 1% of its float32 speed: each side gets its best shot.

Figures per run: useful (non-padding) tokens/s, seconds per step, peak memory of the process,
final held-out loss on the reply tokens (one function for all three), and achieved FLOP/s
(useful tokens/s x 4 x parameters: forward and backward through the frozen model) against this
CPU's matmul peak: the nominal bf16 420 GFLOP/s of the stack notes and the faster of the bf16
and fp32 peaks measured just before the runs (lower when other programs share the cores).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# torch, transformers, peft, trl, datasets and the kit modules that load them are imported inside
# the functions that need them: each peer trains in a fresh worker process, and the parent that
# starts the workers and prints the table should not hold them (nor take seconds to start).
from kit.adapters import load_adapter
from kit.models import pick_dtype, resolve_model
from kit.profiles import get_profile
from kit.runtime import peak_memory_mb

NOMINAL_PEAK_GFLOPS = 420.0  # bf16 matmul, measured on the idle 2-core Zen 4 (stack notes)
PEERS = ("kit", "trl", "trainer")
RESULT_TAG = "BENCH_RESULT "


def measure_matmul_peak(seconds: float = 2.0, dtype: str = "bfloat16") -> float:
    """Matrix-multiply GFLOP/s in ``dtype`` on this machine now (best of a few multiplies).

    2048 x 2048 where the precision is fast; where it is emulated (bf16 on an AVX2-only CPU,
    about 1 GFLOP/s) one such multiply would take 17 s, so a quick 256 x 256 probe picks 512.
    """
    import torch  # heavy: only when measuring

    def gflops(n: int) -> float:
        a = torch.randn(n, n, dtype=getattr(torch, dtype))
        b = torch.randn(n, n, dtype=getattr(torch, dtype))
        t = time.perf_counter()
        a @ b
        return 2 * n**3 / (time.perf_counter() - t) / 1e9

    gflops(256)  # warm-up
    n = 2048 if gflops(256) > 10 else 512
    best, stop = gflops(n), time.perf_counter() + seconds
    while time.perf_counter() < stop:
        best = max(best, gflops(n))
    return best


def _common(args: argparse.Namespace):
    """The bundled examples split exactly as the kit's training splits them: (train, held out)."""
    from kit.finetune import sample_and_split  # heavy (transformers): only in a worker

    return sample_and_split(None, args.train_examples, args.eval_examples, args.seed)


def _lora(args: argparse.Namespace):
    from peft import LoraConfig  # heavy: only in a worker

    return LoraConfig(
        r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=0.0,
        target_modules=args.targets.split(","),
        task_type="CAUSAL_LM",
    )


class _Counting:
    """Wrap a data collator to count real (non-padding) tokens of the batches it builds."""

    def __init__(self, collator: Any):
        self.collator, self.useful = collator, 0

    def __call__(self, features):
        batch = self.collator(features)
        self.useful += int(batch["attention_mask"].sum())
        return batch


@dataclass
class _Trained:
    """What one peer's training gives the figures."""

    model: Any
    seconds: float  # wall time of the training call
    useful: int  # real (non-padding) tokens trained on
    steps: int
    train_s: float  # seconds of training proper (the kit's: evaluation excluded)


def _run_peer(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Train one peer in this process; return its figures."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer, set_seed  # heavy: only in a worker

    from kit.chat_data import format_examples  # heavy (haystack, torch): only in a worker

    train, held = _common(args)
    set_seed(args.seed)
    # the tokenizer alone: a whole model held here would count in every peer's peak memory
    tok = AutoTokenizer.from_pretrained(resolve_model())
    eval_feats = format_examples(tok, held, args.max_seq_len, what="held-out")[0] if held else []
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:  # adapters, checkpoints
        if name == "kit":
            trained = _train_kit(args, tmp)
        else:
            trained = _train_stock(name, args, tmp, tok, train)
        return _figures(name, trained, eval_feats)


def _train_kit(args: argparse.Namespace, tmp: str) -> _Trained:
    """The kit's run: :func:`kit.finetune.train_adapter` with the benchmark's settings."""
    from kit.finetune import train_adapter  # heavy (transformers): only in a worker

    result = train_adapter(
        profile=args.profile,
        output_dir=tmp,
        seed=args.seed,
        max_steps=args.steps,
        batch_size=args.batch_size,
        grad_accum=1,
        max_seq_len=args.max_seq_len,
        learning_rate=args.lr,
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_targets=tuple(args.targets.split(",")),
        lora_dropout=0.0,
        train_examples=args.train_examples,
        eval_examples=args.eval_examples,
        eval_steps=args.steps,
        save_steps=args.steps,
        **({"dtype": args.dtype} if args.dtype else {}),
    )
    model, _ = load_adapter(result.adapter_dir)
    useful = result.tokens_seen
    train_s = useful / result.useful_tokens_per_s
    return _Trained(model, result.train_seconds, useful, result.steps, train_s)


def _train_stock(name: str, args: argparse.Namespace, tmp: str, tok: Any, train: list) -> _Trained:
    """A peer as courses teach it (``trl`` or ``trainer``), counting the real tokens it sees."""
    import torch  # heavy: only in a worker
    from transformers import AutoModelForCausalLM  # heavy: only in a worker

    from kit.chat_data import with_system  # heavy (haystack, torch): only in a worker

    # The peers compute in the precision the kit picks here (bf16 only where the CPU is
    # faster in it): the bundled folder's own bf16 and TRL's default bf16 are emulated and
    # ~100x slower on AVX2-only CPUs.
    bf16 = (args.dtype or pick_dtype("auto")) == "bfloat16"
    source = resolve_model("smollm2-135m-instruct")
    weights = torch.bfloat16 if bf16 else torch.float32
    model = AutoModelForCausalLM.from_pretrained(source, dtype=weights)
    rows = [{"messages": with_system(ex.messages)} for ex in train]
    build = _trl_trainer if name == "trl" else _plain_trainer
    trainer = build(args, tmp, tok, model, rows, bf16)
    counter = _Counting(trainer.data_collator)
    trainer.data_collator = counter
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    return _Trained(trainer.model, seconds, counter.useful, trainer.state.global_step, seconds)


def _shared_settings(args: argparse.Namespace, tmp: str, bf16: bool) -> dict[str, Any]:
    """The settings both stock peers take from the benchmark; the rest stays at their defaults."""
    import torch  # heavy: only in a worker

    return {
        "output_dir": tmp,
        "max_steps": args.steps,
        "per_device_train_batch_size": args.batch_size,
        "learning_rate": args.lr,
        "seed": args.seed,
        "report_to": "none",
        "save_strategy": "no",
        "use_cpu": not torch.cuda.is_available(),
        "bf16": bf16,
    }


def _trl_trainer(args: argparse.Namespace, tmp: str, tok: Any, model: Any, rows: list, bf16: bool):
    """A stock TRL SFTTrainer with peft LoRA, every other setting at TRL's defaults."""
    from datasets import Dataset  # heavy: only in a worker
    from trl import SFTConfig, SFTTrainer  # heavy: only in a worker

    return SFTTrainer(
        model=model,
        args=SFTConfig(**_shared_settings(args, tmp, bf16), max_length=args.max_seq_len),
        train_dataset=Dataset.from_list(rows),
        processing_class=tok,
        peft_config=_lora(args),
    )


def _plain_trainer(
    args: argparse.Namespace, tmp: str, tok: Any, model: Any, rows: list, bf16: bool
):
    """A plain transformers Trainer with peft LoRA on chat-template text, loss on all tokens."""
    from datasets import Dataset  # heavy: only in a worker
    from peft import get_peft_model  # heavy: only in a worker
    from transformers import DataCollatorForLanguageModeling, Trainer, TrainingArguments

    texts = [tok.apply_chat_template(r["messages"], tokenize=False) for r in rows]
    data = Dataset.from_dict({"text": texts}).map(
        lambda b: tok(b["text"], truncation=True, max_length=args.max_seq_len),
        batched=True,
        remove_columns=["text"],
    )
    return Trainer(
        model=get_peft_model(model, _lora(args)),
        args=TrainingArguments(**_shared_settings(args, tmp, bf16)),
        train_dataset=data,
        data_collator=DataCollatorForLanguageModeling(tok, mlm=False),
    )


def _figures(name: str, trained: _Trained, eval_feats: list) -> dict[str, Any]:
    """A peer's row: speed, memory, held-out loss on the reply tokens (one function for all)."""
    import torch  # heavy: only in a worker

    from kit.finetune import eval_loss  # heavy (transformers): only in a worker

    model, steps, useful, train_s = trained.model, trained.steps, trained.useful, trained.train_s
    return {
        "peer": name,
        "steps": steps,
        "seconds": round(trained.seconds, 2),
        "s_per_step": round(train_s / max(steps, 1), 3),
        "useful_tokens": useful,
        "useful_tokens_per_s": round(useful / train_s, 1),
        "peak_mem_mb": round(peak_memory_mb()),
        "eval_loss": round(eval_loss(model, eval_feats), 4) if eval_feats else float("nan"),
        "params": sum(p.numel() for p in model.parameters()),
        "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
        "torch_threads": torch.get_num_threads(),
    }


def _parser() -> argparse.ArgumentParser:
    cpu = get_profile("cpu")
    p = argparse.ArgumentParser(
        prog="python -m kit bench finetune",
        description="The kit's LoRA fine-tune vs stock TRL SFTTrainer vs a plain Trainer.",
    )
    p.add_argument("--steps", type=int, default=20, help="optimizer steps per run (default 20)")
    p.add_argument("--batch-size", type=int, default=cpu.batch_size)
    p.add_argument("--max-seq-len", type=int, default=cpu.max_seq_len)
    p.add_argument("--lr", type=float, default=cpu.learning_rate, help="same for all peers")
    p.add_argument("--lora-r", type=int, default=cpu.lora_r)
    p.add_argument("--lora-alpha", type=int, default=cpu.lora_alpha)
    p.add_argument("--targets", default=",".join(cpu.lora_targets), help="LoRA target modules")
    p.add_argument("--train-examples", type=int, default=0, help="0 = the whole style set")
    p.add_argument("--eval-examples", type=int, default=cpu.eval_examples)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--seeds",
        default="",
        help="comma-separated seeds, e.g. 42,43,44: every peer runs once per seed (each seed also "
        "picks another held-out slice) and the table shows the means; a 20-step run's eval loss "
        "moves with the seed by more than the peers differ",
    )
    p.add_argument("--profile", default="cpu", help="profile the kit's run starts from")
    p.add_argument("--dtype", choices=["bfloat16", "float32"], help="force the kit's precision")
    p.add_argument("--only", default=",".join(PEERS), help="comma-separated subset of peers")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.add_argument("--worker", choices=PEERS, help=argparse.SUPPRESS)
    return p


def mean_per_peer(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per peer (in order of first appearance): the mean of its runs over the seeds.

    Speeds, seconds per step and eval loss are averaged, peak memory is the largest; the row
    keeps every run's eval loss in ``eval_losses`` and how many runs it averages in ``runs``.
    """
    peers = list(dict.fromkeys(r["peer"] for r in runs))
    rows = []
    for peer in peers:
        mine = [r for r in runs if r["peer"] == peer]
        row = dict(mine[0])
        for key in ("s_per_step", "useful_tokens_per_s", "eval_loss", "seconds"):
            row[key] = round(sum(r[key] for r in mine) / len(mine), 4)
        row["peak_mem_mb"] = max(r["peak_mem_mb"] for r in mine)
        row["eval_losses"] = [r["eval_loss"] for r in mine]
        row["runs"] = len(mine)
        rows.append(row)
    return rows


def format_table(rows: list[dict[str, Any]], peak_now: float, load: tuple[float, ...]) -> str:
    """The results as a plain-text table plus the ratios the targets are stated in."""
    lines = [
        f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} / {load[1]:.2f} / "
        f"{load[2]:.2f} (1/5/15 min); matmul peak now {peak_now:.0f} GFLOP/s "
        f"(nominal {NOMINAL_PEAK_GFLOPS:.0f})",
        "",
        f"{'peer':<8} {'steps':>5} {'s/step':>7} {'useful tok/s':>12} {'peak MB':>8} "
        f"{'eval loss':>9} {'GFLOP/s':>8} {'% nominal':>9} {'% now':>6}",
    ]
    for r in rows:
        gflops = r["useful_tokens_per_s"] * 4 * r["params"] / 1e9
        r["gflops"] = round(gflops, 1)
        lines.append(
            f"{r['peer']:<8} {r['steps']:>5} {r['s_per_step']:>7.2f} "
            f"{r['useful_tokens_per_s']:>12.1f} {r['peak_mem_mb']:>8} {r['eval_loss']:>9.4f} "
            f"{gflops:>8.1f} {100 * gflops / NOMINAL_PEAK_GFLOPS:>8.0f}% "
            f"{100 * gflops / max(peak_now, 1e-9):>5.0f}%"
        )
    by = {r["peer"]: r for r in rows}
    if "kit" in by:
        lines.append("")
        for peer, target in (("trl", 1.5), ("trainer", 1.2)):
            if peer in by:
                ratio = by["kit"]["useful_tokens_per_s"] / max(
                    by[peer]["useful_tokens_per_s"], 1e-9
                )
                lower = by["kit"]["eval_loss"] <= by[peer]["eval_loss"]
                lines.append(
                    f"kit vs {peer}: {ratio:.2f}x useful tokens/s (target >= {target}x), eval loss "
                    f"{'equal or lower' if lower else 'HIGHER'}"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (each peer in a fresh process) and print the table; return 0 if all ran."""
    args = _parser().parse_args(argv)
    if args.worker:
        print(RESULT_TAG + json.dumps(_run_peer(args.worker, args)), flush=True)
        return 0
    get_profile(args.profile)  # an unknown profile stops here, before any peer trains
    peers = [p for p in args.only.split(",") if p]
    unknown = set(peers) - set(PEERS)
    if unknown:
        print(f"error: unknown peer(s) {sorted(unknown)}; choose from {PEERS}", file=sys.stderr)
        return 2
    peaks = {dtype: measure_matmul_peak(dtype=dtype) for dtype in ("bfloat16", "float32")}
    # The ceiling is the faster precision here: some CPUs report bf16 and run it slower than fp32.
    peak_now = max(peaks.values())
    bf16, fp32 = peaks["bfloat16"], peaks["float32"]
    print(f"matmul peak now: bf16 {bf16:.0f} GFLOP/s, fp32 {fp32:.0f} GFLOP/s", flush=True)
    load = os.getloadavg()
    print(
        f"fine-tune benchmark: {args.steps} steps x batch {args.batch_size}, max length "
        f"{args.max_seq_len}, lr {args.lr:g}, LoRA r={args.lora_r} on {args.targets}",
        flush=True,
    )
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()] or [args.seed]
    runs, failed = [], []
    base = [a for a in (argv if argv is not None else sys.argv[1:]) if a]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    for seed in seeds:
        for peer in peers:
            print(f"  running {peer} (seed {seed}) ...", flush=True)
            cmd = [sys.executable, "-m", "kit.finetune_bench", *base]
            cmd += ["--seed", str(seed), "--worker", peer]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            found = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_TAG)]
            if proc.returncode != 0 or not found:
                failed.append(peer)
                tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
                print(f"  {peer} failed (exit {proc.returncode}):\n{tail}", file=sys.stderr)
                continue
            runs.append({**json.loads(found[-1][len(RESULT_TAG) :]), "seed": seed})
            r = runs[-1]
            print(
                f"    {r['useful_tokens_per_s']:.0f} useful tok/s, eval loss {r['eval_loss']:.4f}"
            )
    rows = mean_per_peer(runs)
    load_after = os.getloadavg()
    print()
    print(format_table(rows, peak_now, load))
    if len(seeds) > 1:
        for r in rows:
            losses = ", ".join(f"{v:.4f}" for v in r["eval_losses"])
            print(f"{r['peer']} eval loss per seed ({args.seeds}): {losses}")
    print(f"load average after the runs: {load_after[0]:.2f} / {load_after[1]:.2f}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"rows": rows, "runs": runs, "peak_now_gflops": peak_now, "load": load}, indent=2
            )
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
