"""rag-ft-kit: learn and prototype RAG, LoRA fine-tuning and their hybrid, offline on a CPU.

One module per stage of the pipeline, in layers (see README.md, "How the kit is built"; a
module never imports a higher layer): ``data`` / ``models`` / ``generate`` (``decode``) ->
``rag`` / ``finetune`` -> ``evaluate`` -> ``rag_eval`` / ``abstain`` -> ``hybrid`` ->
``compare`` -> ``widgets`` / ``verdict`` / ``report`` -> ``run``, the benchmarks and
``python -m kit``.
``profiles`` and ``doctor`` say what this machine can do; ``checks`` powers the exercises;
``colab`` installs the kit in Colab and ``colab_cells`` writes the notebooks' Colab badge and
set-up cell.
"""

import os

__version__ = "0.1.0"

# The kit runs offline: no usage telemetry from the libraries it drives. Set before they are
# imported; a user who wants telemetry can still set these variables to something else first.
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def doctor(profile: str | None = None):
    """Check this machine and return a :class:`kit.doctor.Report` (shown as a table in Jupyter)."""
    from kit.doctor import run_doctor

    return run_doctor(profile)
