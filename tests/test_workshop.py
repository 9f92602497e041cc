"""The workshop path: prepare the artefacts, check a machine, reproduce the stored results.

``prepare`` runs on the smoke profile in the real cache (the comparison it needs is the one the
main job and notebook 04 cache, so it is computed once per test session at most).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit import workshop
from kit.__main__ import main
from kit.adapters import raft_dir
from kit.doctor import FAIL, OK, WARN

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def manifest(smoke_comparison):
    return workshop.prepare("smoke")  # reuses the session's smoke comparison and adapters


def test_prepare_builds_verifies_and_records_every_artefact(manifest):
    assert manifest["profile"] == "smoke" and manifest["reproduced"]["ok"]
    assert manifest["reproduced"]["questions"] == workshop.REPRODUCE_QUESTIONS
    assert workshop.manifest_path("smoke").is_file()
    for path in manifest["artefacts"].values():
        assert Path(path).exists(), path
    systems = {row["system"] for row in manifest["summary"]}
    assert {"base", "rag", "finetuned", "hybrid", "hybrid-raft"} <= systems


def test_prebuilt_adapters_are_what_the_notebooks_reuse(manifest, index):
    from kit.adapters import ADAPTER_MARKER
    from kit.finetune import adapter_identity, train_adapter
    from kit.hybrid import raft_plan, raft_training_set
    from kit.rag import build_rag

    marker = Path(manifest["artefacts"]["raft_adapter"]) / ADAPTER_MARKER
    written = marker.stat().st_mtime_ns
    style = train_adapter(profile="smoke", reuse=True)  # notebook 02 with USE_PREBUILT = True
    assert str(style.adapter_dir) == manifest["artefacts"]["style_adapter"]
    rag = build_rag(index, profile="smoke")
    raft = train_adapter(
        raft_training_set(rag, "smoke"),
        profile="smoke",
        output_dir=raft_dir("smoke"),
        reuse=True,
        init_adapter=style.adapter_dir,
        **raft_plan("smoke")["overrides"],
    )  # notebook 03 with USE_PREBUILT = True: the very same RAFT data, so the prebuilt one
    assert str(raft.adapter_dir) == manifest["artefacts"]["raft_adapter"]
    assert marker.stat().st_mtime_ns == written  # reused, not trained again
    assert raft.settings["init_adapter"] == adapter_identity(style.adapter_dir)


def test_the_reloaded_adapter_reproduces_the_stored_answers(manifest):
    again = workshop.reproduce("smoke", n=2)
    assert again == {"ok": True, "questions": 2, "mismatches": []}


def test_check_reports_ready_then_stale_artefacts(manifest, capsys):
    report = workshop.check("smoke")
    by_name = {c.name: c for c in report.checks}
    for name in ("style adapter", "RAFT adapter", "comparison", "notebooks"):
        assert by_name[name].status == OK, by_name[name]
    assert by_name["cache"].status != FAIL  # disk space: a warning at most on a full-ish disk
    assert main(["workshop", "check", "--profile", "smoke"]) == (0 if report.ok else 1)
    assert "style adapter" in capsys.readouterr().out

    path = workshop.manifest_path("smoke")
    saved = path.read_text()
    try:
        path.write_text(json.dumps({**json.loads(saved), "kit_version": "0.0.0"}))
        stale = {c.name: c for c in workshop.check("smoke").checks}["workshop artefacts"]
        assert stale.status == FAIL and "kit version" in stale.detail and "prepare" in stale.fix
        online = {**json.loads(saved), "generator": "HuggingFaceTB/SmolLM2-360M-Instruct"}
        path.write_text(json.dumps(online))  # prepared online; this machine is offline
        other = {c.name: c for c in workshop.check("smoke").checks}["workshop artefacts"]
        assert other.status == FAIL and "this machine loads smollm2-135m-instruct" in other.detail
        path.unlink()
        missing = {c.name: c for c in workshop.check("smoke").checks}["workshop artefacts"]
        assert missing.status == WARN and "train everything" in missing.detail
    finally:
        path.write_text(saved)


def test_check_reads_your_profile_and_a_half_copied_record(manifest):
    from kit.profiles import get_profile

    mine = get_profile("smoke").with_(max_new_tokens=30)
    assert workshop.check(mine).profile == mine  # not the registered smoke profile
    path = workshop.manifest_path("smoke")
    saved = path.read_text()
    try:
        path.write_text(saved[: len(saved) // 2])  # a copy cut short
        cut = {c.name: c for c in workshop.check("smoke").checks}["workshop artefacts"]
        assert cut.status == FAIL and "cannot be read" in cut.detail and "prepare" in cut.fix
    finally:
        path.write_text(saved)


def test_check_fails_a_raft_adapter_that_started_from_another_style_adapter(manifest):
    from kit.adapters import ADAPTER_MARKER

    marker = raft_dir("smoke") / "adapter" / ADAPTER_MARKER
    saved = marker.read_text()
    info = json.loads(saved)
    try:
        info["info"]["settings"]["init_adapter"] = "settings:0000000000000000"
        marker.write_text(json.dumps(info))
        raft = {c.name: c for c in workshop.check("smoke").checks}["RAFT adapter"]
        assert raft.status == FAIL and "another style adapter" in raft.detail
        del info["info"]["settings"]["init_adapter"]
        marker.write_text(json.dumps(info))
        raft = {c.name: c for c in workshop.check("smoke").checks}["RAFT adapter"]
        assert raft.status == FAIL and "from the base model" in raft.detail
    finally:
        marker.write_text(saved)
    assert {c.name: c for c in workshop.check("smoke").checks}["RAFT adapter"].status == OK
