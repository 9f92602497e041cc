"""Adapters: save, check, load and merge LoRA adapter folders, and where they live.

An adapter folder holds peft's files (``adapter_config.json``, ``adapter_model.safetensors``),
the tokenizer, and ``kit-adapter.json``: the base model's *fingerprint* (its kit name,
architecture, sizes and a hash of a few of its weights), the training settings and the size of
every file. The fingerprint is what makes loading onto the wrong base model a clear error rather
than silent garbage (peft's own ``base_model_name_or_path`` is a machine-specific path).

Every save writes a temporary folder and renames it into place, so a killed save or a full disk
never leaves a half-written adapter that later loads.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kit.models import DEFAULT_GENERATOR, cache_dir, check_listed_files, load_generator
from kit.profiles import Profile, resolve_profile
from kit.runtime import leftovers_of

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

ADAPTER_MARKER = "kit-adapter.json"
MERGED_MARKER = "kit-merged.json"  # in a model folder merge_adapter wrote: it may replace it
FINGERPRINT_KEYS = ("architecture", "hidden_size", "num_hidden_layers", "vocab_size", "weights")


class AdapterError(RuntimeError):
    """An adapter that cannot be saved, found, trusted or loaded; the message says what to do."""


def adapters_dir() -> Path:
    """Default home of trained adapters: ``<kit cache>/adapters``."""
    return cache_dir() / "adapters"


def style_dir(profile: str | Profile | None = None) -> Path:
    """Where the house-style adapter run of ``profile`` lives (notebooks 02-04, the comparison
    and the workshop share it): ``<kit cache>/adapters/style-<profile>``."""
    return adapters_dir() / f"style-{resolve_profile(profile).name}"


def raft_dir(profile: str | Profile | None = None) -> Path:
    """Where the RAFT adapter run of ``profile`` lives (notebooks 03 and 04, the comparison and
    the workshop share it): ``<kit cache>/adapters/raft-<profile>``."""
    return adapters_dir() / f"raft-{resolve_profile(profile).name}"


def base_fingerprint(model: PreTrainedModel, name: str = "") -> dict[str, Any]:
    """Identify a base model: kit name, architecture, sizes and a hash of a few of its weights.

    The hash covers about a dozen evenly spaced rows of the input embedding (every
    vocabulary/12-th: 4096 for SmolLM2) and the final norm, rounded to
    bfloat16 first, so the bfloat16 and float32 copies of one model match while a different model
    (or a different checkpoint of the same architecture) does not. LoRA never touches those
    weights, so the fingerprint is the same before and after training.
    """
    import torch  # heavy: loaded only when a model is

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    cfg = base.config
    emb = base.get_input_embeddings().weight.detach()
    digest = hashlib.sha256()
    digest.update(emb[:: max(1, emb.shape[0] // 12)].to(torch.bfloat16).float().cpu().numpy())
    for pname, p in base.named_parameters():
        if pname.endswith("norm.weight") and "layers." not in pname:
            digest.update(p.detach().to(torch.bfloat16).float().cpu().numpy())
    return {
        "name": name,
        "architecture": (cfg.architectures or [type(base).__name__])[0],
        "hidden_size": int(getattr(cfg, "hidden_size", 0)),
        "num_hidden_layers": int(getattr(cfg, "num_hidden_layers", 0)),
        "vocab_size": int(getattr(cfg, "vocab_size", 0)),
        "weights": digest.hexdigest()[:16],
    }


def fingerprint_mismatch(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """The fingerprint fields that differ, as readable ``field: adapter X, base Y`` strings."""
    return [
        f"{k}: adapter trained on {expected.get(k)!r}, this base has {actual.get(k)!r}"
        for k in FINGERPRINT_KEYS
        if expected.get(k) != actual.get(k)
    ]


def save_adapter(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    out_dir: str | Path,
    fingerprint: dict[str, Any],
    info: dict[str, Any] | None = None,
) -> Path:
    """Save a peft model's adapter (and tokenizer) atomically into ``out_dir``; return it.

    A folder already at ``out_dir`` is replaced only once the new one is complete. On a full
    disk (or any write error) the temporary folder is removed, ``out_dir`` keeps what it held
    before, and :class:`AdapterError` says so.
    """
    out = Path(out_dir).expanduser()  # "~/adapters/mine": the user's home, not a "~" folder
    refuse_foreign(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _tidy_leftovers(out)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        marker = {
            "base": fingerprint,
            "info": info or {},
            "files": {p.name: p.stat().st_size for p in tmp.iterdir() if p.is_file()},
        }
        (tmp / ADAPTER_MARKER).write_text(json.dumps(marker, indent=2, default=str))
        _swap_into_place(tmp, out)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        why = "the disk is full" if err.errno == errno.ENOSPC else str(err)
        raise AdapterError(
            f"Could not save the adapter to {out}: {why}. Nothing was half-written: "
            f"{'the previous adapter there is untouched' if out.exists() else 'no adapter saved'}."
            " Free some space (or pass another output_dir) and save again."
        ) from err
    return out


def refuse_foreign(
    out: Path,
    marker: str = ADAPTER_MARKER,
    what: str = "a kit adapter",
    doing: str = "saving",
    fix: str = "Pass another output_dir.",
) -> None:
    """AdapterError when ``out`` holds something without the kit's ``marker`` (a folder the kit
    wrote, even a damaged one, may be replaced): writing there would replace it. Training
    checks it before it starts, so a folder of yours is said at once, not after the run."""
    foreign = out.is_dir() and any(out.iterdir()) and not (out / marker).is_file()
    if out.is_file() or foreign:
        raise AdapterError(
            f"{out} holds something that is not {what}; {doing} would replace it. {fix}"
        )


def _tidy_leftovers(out: Path) -> None:
    """What saves of ``out`` killed part-way left beside it (``.<name>.tmp-<pid>``,
    ``.<name>.old-<pid>`` of processes that are gone): the previous adapter moved aside is put
    back if ``out`` is missing (a kill between the two renames of :func:`_swap_into_place`),
    everything else is removed. Nothing else in the folder is touched."""
    for kind, left in leftovers_of(out, ("tmp", "old")):
        if kind == "old" and not out.exists():
            left.rename(out)
        else:
            shutil.rmtree(left, ignore_errors=True)


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Rename tmp to out; an existing out is moved aside first and removed after."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        out.rename(old)
    try:
        tmp.rename(out)
    except OSError:
        if old.exists() and not out.exists():
            old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def check_adapter(adapter_dir: str | Path) -> str | None:
    """What is wrong with an adapter folder (a sentence), or None if it is complete."""
    if not isinstance(adapter_dir, (str, Path)) or not str(adapter_dir).strip():
        return f"{adapter_dir!r} is not a folder path"
    folder = Path(adapter_dir).expanduser()
    if not folder.is_dir():
        return f"{folder} does not exist or is not a folder"
    if not (folder / ADAPTER_MARKER).is_file():
        return f"no {ADAPTER_MARKER}: not a kit adapter, or its save did not finish{_hint(folder)}"
    return check_listed_files(folder, ADAPTER_MARKER)


def _hint(folder: Path) -> str:
    """What the user probably meant, for a folder that is not a kit adapter."""
    inside = sorted(p.parent for p in folder.glob("*/" + ADAPTER_MARKER))
    if inside:
        return f". The kit adapter is one level down: pass {inside[0]}"
    if (folder / "adapter_config.json").is_file():
        return (
            ". It is a plain peft adapter (adapter_config.json, no kit record of its base "
            "model): load it with peft.PeftModel.from_pretrained(model, folder), or train it "
            "with the kit (train_adapter) to get a checked one"
        )
    return ""


def read_adapter_info(adapter_dir: str | Path) -> dict[str, Any]:
    """The contents of an adapter's ``kit-adapter.json`` (base fingerprint, training info)."""
    problem = check_adapter(adapter_dir)
    if problem:
        raise AdapterError(f"Cannot use the adapter at {adapter_dir}: {problem}.")
    info = json.loads((Path(adapter_dir).expanduser() / ADAPTER_MARKER).read_text())
    if not isinstance(info.get("base"), dict):
        raise AdapterError(
            f"Cannot use the adapter at {adapter_dir}: its {ADAPTER_MARKER} does not say which "
            'base model it was trained on ("base": {...}); the file was edited or is not the '
            "kit's. Train the adapter again (kit.finetune.train_adapter)."
        )
    return info


def load_adapter(
    adapter_dir: str | Path,
    base: str | None = None,
    dtype: str = "auto",
    device: str | None = None,
) -> tuple[Any, PreTrainedTokenizerBase]:
    """Load a base model with a trained adapter on top, ready for ``generate``.

    In: the adapter folder; the base model (default: the one it was trained on, by kit name);
    precision and device. Out: ``(peft model in eval mode, tokenizer)``. Raises
    :class:`AdapterError` if the folder is incomplete or if ``base`` is not the model the adapter
    was trained on (compared by fingerprint, not by name).
    """
    from transformers import AutoTokenizer  # heavy: only when an adapter is loaded

    info = read_adapter_info(adapter_dir)
    adapter_dir = Path(adapter_dir).expanduser()  # "~/adapters/style" is the user's folder
    base_name = base or info["base"].get("name") or DEFAULT_GENERATOR
    model, _ = load_generator(base_name, dtype=dtype, device=device)
    peft_model = attach_adapter(model, adapter_dir, base_name)  # the base checked first
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir))
    except (OSError, ValueError) as err:
        raise AdapterError(
            f"The adapter at {adapter_dir} has no usable tokenizer files ({str(err)[:120]}); "
            "the folder is incomplete: train or copy the adapter again."
        ) from None
    peft_model.eval()
    return peft_model, tokenizer


def attach_adapter(
    model: PreTrainedModel, adapter_dir: str | Path, base_name: str = "", trainable: bool = False
) -> Any:
    """Put a saved adapter on an already loaded base model; return the peft model.

    In: the base model, the adapter folder, the base's kit name (for the message), and whether
    the adapter's weights should be trained further (``trainable=True``, as
    ``kit.finetune.train_adapter(init_adapter=...)`` does). Out: a ``peft.PeftModel``.
    Raises :class:`AdapterError` if the folder is incomplete or the adapter was trained on
    another base model (compared by fingerprint, not by name).
    """
    from peft import PeftModel  # heavy: only when an adapter is attached

    expected = read_adapter_info(adapter_dir)["base"]
    adapter_dir = Path(adapter_dir).expanduser()
    wrong = fingerprint_mismatch(expected, base_fingerprint(model, base_name))
    if wrong:
        raise AdapterError(
            f"The adapter at {adapter_dir} was trained on {expected.get('name')!r}, and "
            f"{base_name!r} is a different model ({'; '.join(wrong)}). An adapter only works on "
            "the exact base model it was trained on: load it with base="
            f"{expected.get('name')!r} (or leave base out)."
        )
    try:
        return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=trainable)
    except (OSError, ValueError, KeyError) as err:
        raise AdapterError(
            f"The adapter at {adapter_dir} could not be read ({str(err)[:160]}); the folder is "
            "incomplete or not a LoRA adapter: train or copy the adapter again."
        ) from None


def adapter_weights_hash(adapter_dir: str | Path) -> str:
    """A short hash of an adapter's weight files: two adapters with the same hash are the same.

    Raises :class:`AdapterError` if the folder is not a complete kit adapter.
    """
    read_adapter_info(adapter_dir)
    digest = hashlib.sha256()
    for path in sorted(Path(adapter_dir).expanduser().glob("adapter_model.*")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def merge_adapter(
    adapter_dir: str | Path, out_dir: str | Path, base: str | None = None, dtype: str = "bfloat16"
) -> Path:
    """Fold the adapter into the base weights and save a standalone model folder; return it.

    The result loads like any model folder (``load_generator(str(out_dir))``), with no peft
    needed, and runs as fast as the base model. Written atomically like :func:`save_adapter`;
    a folder at ``out_dir`` is replaced only if it is empty or a model this function wrote
    (:data:`MERGED_MARKER`): anything else there is yours, and AdapterError says so.
    """
    out = Path(out_dir).expanduser()
    what, fix = "a model merge_adapter wrote", "Pass another out_dir (a new or empty folder)."
    refuse_foreign(out, MERGED_MARKER, what, "writing there", fix)
    model, tokenizer = load_adapter(adapter_dir, base=base, dtype=dtype, device="cpu")
    merged = model.merge_and_unload()
    out.parent.mkdir(parents=True, exist_ok=True)
    _tidy_leftovers(out)  # a merge killed part-way: the previous model put back, or removed
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / MERGED_MARKER).write_text(json.dumps({"adapter": str(adapter_dir)}))
        _swap_into_place(tmp, out)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise AdapterError(f"Could not write the merged model to {out}: {err}") from err
    return out
