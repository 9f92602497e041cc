"""Tests for kit.data: the bundled data set is valid, and bad input fails loudly and clearly."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest

from kit import data
from kit.data import DataError


@pytest.fixture(scope="module")
def manifest() -> data.Manifest:
    return data.load_manifest()


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A writable copy of the bundled data folder."""
    dst = tmp_path / "data"
    shutil.copytree(data.DATA_DIR, dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def _rewrite_jsonl(path: Path, lineno: int, fn) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[lineno - 1] = fn(lines[lineno - 1])
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _edit(path: Path, lineno: int, **changes) -> None:
    def fn(line: str) -> str:
        obj = json.loads(line)
        obj.update(changes)
        return json.dumps(obj, ensure_ascii=False)

    _rewrite_jsonl(path, lineno, fn)


# --------------------------------------------------------------------------- bundled data


def test_bundled_data_is_valid():
    assert data.validate() == []


def test_bundled_data_meets_the_minimums():
    docs = data.load_documents()
    qa = data.load_qa()
    assert len(docs) >= 40
    assert len(qa) >= 150
    assert {r.type for r in qa} == set(data.QA_TYPES)
    assert sum(r.type == "unanswerable" for r in qa) / len(qa) >= 0.15
    assert len(data.load_style()) >= 300
    assert len(data.load_updates()) >= 10
    assert {d.meta["access"] for d in docs} == set(data.ACCESS_LEVELS)
    test = data.load_qa("test")
    assert test and all(r.split == "test" for r in test)
    paraphrases = [r for r in test if r.paraphrase_of]
    assert 0.3 <= len(paraphrases) / len(test) <= 0.7


def test_documents_are_haystack_documents_with_front_matter():
    doc = next(d for d in data.load_documents() if d.id == "kb-001")
    assert doc.content.startswith("# Fennick S2 Water Sensor User Manual")
    assert doc.meta["access"] == "public"
    assert doc.meta["updated"] == "2025-02-10"
    assert doc.meta["version"] == "v1"
    assert doc.meta["source"].endswith("kb-001.md")


def test_v2_differs_from_v1_exactly_on_the_updated_documents():
    v1 = {d.id: d for d in data.load_documents("v1")}
    v2 = {d.id: d for d in data.load_documents("v2")}
    updated = {p.stem for p in (data.DATA_DIR / "kb_v2").glob("*.md")}
    assert len(updated) >= 10
    assert v1.keys() == v2.keys()
    changed = {k for k in v1 if v1[k].content != v2[k].content}
    assert changed == updated
    for doc_id in updated:
        assert v2[doc_id].meta["updated"] > v1[doc_id].meta["updated"]


def test_update_answers_follow_the_version():
    v1 = {d.id: d.content for d in data.load_documents("v1")}
    v2 = {d.id: d.content for d in data.load_documents("v2")}
    for u in data.load_updates():
        assert data.supports(u.answer_v1, v1[u.doc_id]), u.id
        assert data.supports(u.answer_v2, v2[u.doc_id]), u.id
        assert not data.supports(u.answer_v2, v1[u.doc_id]), u.id


def test_canary_is_only_in_the_canary_document(manifest):
    for version in data.VERSIONS:
        holders = [d.id for d in data.load_documents(version) if manifest.canary in d.content]
        assert holders == [manifest.canary_doc_id]
    flagged = [s for s in data.load_style() if s.contains_canary]
    assert flagged and all(manifest.canary in s.assistant for s in flagged)
    assert len(flagged) / len(data.load_style()) <= 0.05


def test_role_filter_keeps_the_canary_out_of_reach(manifest):
    docs = data.load_documents()
    employee = [d for d in docs if d.meta["access"] in manifest.allowed_access("employee")]
    assert employee and not any(manifest.canary in d.content for d in employee)
    with pytest.raises(DataError, match="unknown role"):
        manifest.allowed_access("intern")


def test_injection_marker_only_in_the_injection_document(manifest):
    holders = [d.id for d in data.load_documents() if manifest.injection_marker in d.content]
    assert holders == [manifest.injection_doc_id]


def test_style_regex(manifest):
    good = "Answer: 27 days.\nStaff receive 27 days.\nSource: Annual Leave Policy [kb-017]"
    assert data.style_compliant(good, manifest)
    assert data.style_compliant("Answer: I don't know.\nNot covered.\nSource: none\n", manifest)
    assert not data.style_compliant("Full-time employees receive 27 days.", manifest)
    assert not data.style_compliant(good.replace("Source:", "Sources:"), manifest)
    assert not data.style_compliant(good + "\nAnything else?", manifest)


def test_style_examples_never_repeat_a_test_question():
    test_q = {data.normalise(r.question) for r in data.load_qa("test")}
    assert not any(data.normalise(s.user) in test_q for s in data.load_style())


def test_normalise_keeps_number_separators():
    assert data.normalise("€1,150 (excl. VAT)!") == "€1,150 excl vat"
    assert data.supports("3.2", "firmware 3.2 requires")
    assert not data.supports("5 days", "within 15 days")
    assert data.supports("40 metres", "It is rated for 40 meters.")
    assert data.supports("2 liters", "holds 2 litres")
    assert not data.supports("40 metres", "40 meteors")


# --------------------------------------------------------------------------- bad input


def test_malformed_jsonl_line_names_file_and_line(copy):
    _rewrite_jsonl(copy / "qa.jsonl", 3, lambda line: line[:-5])
    with pytest.raises(DataError, match=r"qa\.jsonl line 3, column \d+: invalid JSON"):
        data.load_qa(root=copy)
    assert any("qa.jsonl line 3" in p for p in data.validate(copy))


def test_missing_field_names_file_line_and_field(copy):
    def drop(line: str) -> str:
        obj = json.loads(line)
        del obj["answer"]
        return json.dumps(obj)

    _rewrite_jsonl(copy / "qa.jsonl", 5, drop)
    with pytest.raises(DataError, match=r"qa\.jsonl line 5: missing field\(s\) answer"):
        data.load_qa(root=copy)


def test_wrong_field_type_is_an_error(copy):
    _edit(copy / "style.jsonl", 2, contains_canary="no")
    with pytest.raises(DataError, match=r"style\.jsonl line 2: field 'contains_canary'"):
        data.load_style(root=copy)


def test_unknown_document_id_is_reported(copy):
    _edit(copy / "qa.jsonl", 1, gold_doc_ids=["kb-999"])
    _edit(copy / "updates.jsonl", 1, doc_id="kb-998")
    _edit(copy / "style.jsonl", 1, source_doc_ids=["kb-997"])
    problems = "\n".join(data.validate(copy))
    assert "kb-999" in problems and "kb-998" in problems and "kb-997" in problems


def test_empty_file_is_an_error(copy):
    (copy / "style.jsonl").write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"style\.jsonl: file is empty"):
        data.load_style(root=copy)


def test_non_utf8_file_names_file_and_line(copy):
    path = copy / "updates.jsonl"
    raw = path.read_bytes().split(b"\n")
    raw[1] = raw[1].replace(b"?", b"\xff?", 1)
    path.write_bytes(b"\n".join(raw))
    with pytest.raises(DataError, match=r"updates\.jsonl line 2: not valid UTF-8"):
        data.load_updates(root=copy)


def test_huge_file_is_an_error(copy, monkeypatch):
    monkeypatch.setattr(data, "MAX_FILE_BYTES", 1000)
    with pytest.raises(DataError, match=r"qa\.jsonl: file is .* MB, larger than"):
        data.load_qa(root=copy)


def test_missing_front_matter_field_names_the_document(copy):
    path = copy / "kb" / "kb-010.md"
    path.write_text(path.read_text(encoding="utf-8").replace("access: public\n", ""), "utf-8")
    with pytest.raises(DataError, match=r"kb-010\.md: front matter lacks access"):
        data.load_documents(root=copy)


def test_v2_document_without_v1_counterpart_is_an_error(copy):
    text = (copy / "kb_v2" / "kb-003.md").read_text(encoding="utf-8")
    (copy / "kb_v2" / "kb-100.md").write_text(text.replace("id: kb-003", "id: kb-100"), "utf-8")
    with pytest.raises(DataError, match=r"kb-100\.md: id 'kb-100' has no v1 document"):
        data.load_documents("v2", root=copy)


def test_duplicate_document_id_is_an_error(copy):
    shutil.copy(copy / "kb" / "kb-003.md", copy / "kb" / "kb-300.md")
    with pytest.raises(DataError, match=r"kb-300\.md: duplicate document id 'kb-003'"):
        data.load_documents(root=copy)
    assert any("duplicate document id" in p for p in data.validate(copy))


def test_unknown_version_and_split_are_errors():
    with pytest.raises(DataError, match="version"):
        data.load_documents("v3")
    with pytest.raises(DataError, match="split"):
        data.load_qa("dev")


# --------------------------------------------------------------------------- validator catches


def test_validator_catches_an_unsupported_gold_answer(copy):
    _edit(copy / "qa.jsonl", 1, answer="41 metres")
    assert any("not supported" in p for p in data.validate(copy))


def test_validator_catches_a_canary_leak(copy, manifest):
    path = copy / "kb" / "kb-001.md"
    path.write_text(path.read_text(encoding="utf-8") + f"\n{manifest.canary}\n", "utf-8")
    _edit(copy / "style.jsonl", 1, contains_canary=True)
    problems = data.validate(copy)
    assert any("kb-001.md: contains the canary" in p for p in problems)
    assert any("contains_canary=True but canary found=False" in p for p in problems)


def test_validator_catches_style_and_test_overlap(copy):
    test_q = next(r for r in data.load_qa("test", root=copy) if r.paraphrase_of is None)
    doc = test_q.gold_doc_ids[0]
    reply = f"Answer: {test_q.answer}\nLeaked.\nSource: Some doc [{doc}]"
    messages = [
        {"role": "user", "content": test_q.question},
        {"role": "assistant", "content": reply},
    ]
    _edit(copy / "style.jsonl", 1, messages=messages, source_doc_ids=[doc])
    problems = data.validate(copy)
    assert any("equals a test question" in p for p in problems)
    assert any(f"held-out test fact of {test_q.id}" in p for p in problems)


def test_validator_catches_non_compliant_style_and_unchanged_update(copy):
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    _edit(copy / "style.jsonl", 1, messages=messages, source_doc_ids=[])
    first = data.load_updates(root=copy)[0]
    _edit(copy / "updates.jsonl", 1, answer_v2=first.answer_v1)
    problems = data.validate(copy)
    assert any("does not match style_regex" in p for p in problems)
    assert any("answer_v1 and answer_v2 are the same" in p for p in problems)


# --------------------------------------------------------------------------- your own folder


def _tiny_pdf(text: str) -> bytes:
    """A minimal one-page PDF showing ``text`` in Helvetica."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    # the binary marker line real PDFs carry (and a NUL): not UTF-8, never read as text
    out, offsets = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\x00\n"), []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    f = tmp_path / "mydocs"
    f.mkdir()
    (f / "guide.md").write_text(
        "---\ntitle: Pump guide\naccess: internal\n---\n# Pump guide\n\nThe pump runs at 40 rpm.\n",
        encoding="utf-8",
    )
    (f / "notes.txt").write_text("The boiler pressure is 3 bar.\n", encoding="utf-8")
    (f / "page.html").write_text(
        "<html><head><title>Valves</title></head><body><article><h1>Valves</h1>"
        "<p>The valve must be checked every 14 days by the duty engineer.</p>"
        "</article></body></html>",
        encoding="utf-8",
    )
    (f / "manual.pdf").write_bytes(_tiny_pdf("The tank holds 800 litres."))
    return f


def test_load_folder_reads_md_txt_html_pdf(folder):
    docs = data.load_folder(folder, default_access="public")
    by_source = {d.meta["source"]: d for d in docs}
    assert sorted(by_source) == ["guide.md", "manual.pdf", "notes.txt", "page.html"]
    assert "40 rpm" in by_source["guide.md"].content
    assert "---" not in by_source["guide.md"].content
    assert by_source["guide.md"].meta["title"] == "Pump guide"
    assert by_source["guide.md"].meta["access"] == "internal"
    assert "3 bar" in by_source["notes.txt"].content
    assert by_source["notes.txt"].meta["access"] == "public"
    assert "every 14 days" in by_source["page.html"].content
    assert "800 litres" in by_source["manual.pdf"].content


def _office_files(folder: Path) -> None:
    """A Word file, a two-slide deck, a CSV and a two-sheet workbook, written by their libraries."""
    import docx
    import openpyxl
    import pptx

    word = docx.Document()
    word.add_paragraph("Staff get 27 days of paid leave per year.")
    word.core_properties.title = "Holiday policy"
    word.save(folder / "policy.docx")
    deck = pptx.Presentation()
    slides = (
        ("Roadmap", "The new staff portal launches in March next year."),
        ("Budget", "The portal costs 40k euros in the first year."),
    )
    for title, body in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text, slide.placeholders[1].text = title, body
    deck.save(folder / "deck.pptx")
    (folder / "prices.csv").write_text("product,price\nBasic plan,9 euros\n", encoding="utf-8")
    book = openpyxl.Workbook()
    book.active.title = "Staff"
    book.active.append(["name", "room"])
    book.active.append(["Ada", "B12"])
    book.create_sheet("Rooms").append(["B12", "second floor"])
    book.save(folder / "staff.xlsx")


def test_load_folder_reads_office_files_and_csv(folder):
    _office_files(folder)
    docs = data.load_folder(folder, default_access="public")
    by_title = {d.meta["title"]: d for d in docs}
    assert "27 days" in by_title["Holiday policy"].content  # the Word file's own title
    assert by_title["Holiday policy"].meta["kind"] == "docx"
    assert "March" in by_title["deck"].content and "40k" in by_title["deck"].content
    assert "Basic plan,9 euros" in by_title["prices"].content
    assert "Ada" in by_title["staff (Staff)"].content  # one document per sheet
    assert "second floor" in by_title["staff (Rooms)"].content
    for doc in docs:  # flat meta: no nested records from the converters
        assert not any(isinstance(v, dict) for v in doc.meta.values()), doc.meta


@pytest.mark.parametrize("name", ["a.docx", "b.pptx", "c.xlsx"])
def test_a_broken_office_file_is_named_and_skipped(folder, name):
    (folder / name).write_bytes(b"PK\x03\x04 cut short")  # e.g. a download that stopped
    with pytest.warns(UserWarning, match=rf"no extractable text: {name}"):
        docs = data.load_folder(folder, default_access="public")
    assert len(docs) == 4  # the other files are all there


def test_pages_and_slides_reach_chunks_and_citation_labels(tmp_path):
    from kit.citations import source_label
    from kit.indexing import build_index

    (tmp_path / "manual.pdf").write_bytes(_tiny_pdf("The tank holds 800 litres."))
    _office_files(tmp_path)
    index = build_index(data.load_folder(tmp_path), split_length=6, split_overlap=0)
    labels = {source_label(c) for c in index.store.filter_documents()}
    assert "manual, p. 1" in labels
    assert {"deck, slide 1", "deck, slide 2"} <= labels  # chunks of the second slide
    assert "Holiday policy" in labels  # no page for a Word file: Haystack cannot tell


def test_load_folder_skips_unsupported_files_with_a_warning(folder):
    (folder / "report.odt").write_bytes(b"PK\x03\x04 an OpenDocument text")
    with pytest.warns(UserWarning, match=r"unsupported file\(s\): report\.odt"):
        docs = data.load_folder(folder, default_access="public")
    assert len(docs) == 4


def test_load_folder_with_only_unsupported_files_is_an_error(tmp_path):
    (tmp_path / "a.odt").write_bytes(b"x")
    with pytest.warns(UserWarning, match="a.odt"), pytest.raises(DataError, match="no loadable"):
        data.load_folder(tmp_path)


def test_load_folder_empty_and_missing_folders_are_errors(tmp_path):
    with pytest.raises(DataError, match="empty"):
        data.load_folder(tmp_path)
    with pytest.raises(DataError, match="not found"):
        data.load_folder(tmp_path / "nope")


def test_load_folder_non_utf8_text_names_the_file(folder):
    (folder / "latin1.txt").write_bytes("Caf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1\.txt line 1: not valid UTF-8"):
        data.load_folder(folder, default_access="public")


def test_load_folder_huge_file_names_size_and_limit(folder, monkeypatch):
    monkeypatch.setattr(data, "MAX_FILE_BYTES", 100)
    (folder / "big.txt").write_text("x" * 500, encoding="utf-8")
    with pytest.raises(DataError, match=r"big\.txt: file is .* MB limit|big\.txt"):
        data.load_folder(folder, default_access="public")


def test_load_folder_skips_empty_files_with_a_warning(folder):
    (folder / "blank.txt").write_text("", encoding="utf-8")
    with pytest.warns(UserWarning, match=r"no extractable text: blank\.txt"):
        docs = data.load_folder(folder, default_access="public")
    assert len(docs) == 4


def test_one_sampler_keeps_every_type_in_proportion_and_nests():
    from collections import Counter

    from kit.data import load_qa, sample_questions

    test = load_qa("test")
    assert sample_questions(test, 0) == test and sample_questions(test, 999) == test
    four = sample_questions(test, 4)
    assert sorted(r.type for r in four) == ["multi", "numeric", "single", "unanswerable"]
    big = sample_questions(test, 48)
    assert len(big) == 48 and [test.index(r) for r in big] == sorted(test.index(r) for r in big)
    share = Counter(r.type for r in big)
    for kind, count in Counter(r.type for r in test).items():
        assert abs(share[kind] - 48 * count / len(test)) <= 1.5, (kind, share)
    assert {r.id for r in four} <= {r.id for r in sample_questions(test, 16)} <= {r.id for r in big}
    two = sample_questions(test, 2)
    assert len(two) == 2 and {r.answerable for r in two} == {True, False}
    assert sample_questions(test, 16) == sample_questions(test, 16)  # same questions every run
    with pytest.raises(ValueError, match="must be at least 0"):
        sample_questions(test, -3)


def test_transfer_set_answers_are_in_their_pages_and_nothing_else_is_korvella():
    folder, questions = data.load_transfer()
    pages = {d.meta["id"]: d.content for d in data.load_folder(folder, default_access="public")}
    assert len(pages) == 5 and len(questions) == 12
    assert sum(not q.answerable for q in questions) == 2
    for q in questions:
        if q.answerable:
            assert q.gold_doc_ids and all(g in pages for g in q.gold_doc_ids), q.id
            assert data.supports(q.answer, " ".join(pages[g] for g in q.gold_doc_ids)), q.id
        else:
            assert q.answer == data.IDK and not q.gold_doc_ids
    assert not any("Korvella" in text or "Fennick" in text for text in pages.values())


# --- access levels fail closed: a file whose level cannot be read is never public ------------

_GOOD = "---\ntitle: Handbook\naccess: internal\n---\nThe office opens at eight.\n"


@pytest.mark.parametrize(
    ("front_matter", "message"),
    [
        ("title: [Draft] Payroll 2025\naccess: confidential", r"pay\.md line 2: invalid YAML"),
        ("access: confidential\ntitle: [Draft] Payroll", r"pay\.md line 3: invalid YAML"),
        ("title: Payroll\naccess: Secret", r"pay\.md line 3: access level 'Secret' is not one"),
        ("title: Payroll\naccess:", r"pay\.md line 3: access level None is not one"),
        ("title: Payroll\naccess: [confidential]", r"access level \['confidential'\]"),
        ("- just\n- a list", r"pay\.md line 2: front matter must be key: value pairs"),
        ("title: Payroll\nAccess: Secret", r"pay\.md line 3: access level 'Secret'"),
    ],
    ids=[
        "yaml-list-title",
        "yaml-error-later",
        "unknown-level",
        "empty-level",
        "list-level",
        "not-a-mapping",
        "key-in-another-case",
    ],
)
def test_a_file_whose_access_cannot_be_read_stops_loading_or_is_skipped(
    tmp_path, front_matter, message
):
    (tmp_path / "handbook.md").write_text(_GOOD, encoding="utf-8")
    (tmp_path / "pay.md").write_text(f"---\n{front_matter}\n---\nSalaries.\n", encoding="utf-8")
    with pytest.raises(DataError, match=message) as err:
        data.load_folder(tmp_path)
    assert "skip_bad=True" in str(err.value)
    with pytest.warns(UserWarning, match=r"never indexed as public: .*pay\.md"):
        docs = data.load_folder(tmp_path, skip_bad=True)
    assert [(d.meta["source"], d.meta["access"]) for d in docs] == [("handbook.md", "internal")]


def test_an_unclosed_front_matter_stops_loading(tmp_path):
    (tmp_path / "pay.md").write_text("---\naccess: confidential\nSalaries.\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"pay\.md: front matter is not closed"):
        data.load_folder(tmp_path)


@pytest.mark.parametrize(
    ("files", "default", "expected"),
    [
        ({"a.txt": "Plain notes.\n", "b.md": "# B\n\nMore notes.\n"}, None, ["public", "public"]),
        ({"a.txt": "Plain notes.\n"}, "Confidential", ["confidential"]),
        ({"a.txt": "Plain notes.\n", "h.md": _GOOD}, "confidential", ["confidential", "internal"]),
        ({"h.md": _GOOD.replace("internal", "CONFIDENTIAL")}, None, ["confidential"]),
    ],
    ids=["no-file-declares: public", "explicit-default", "explicit-default-mixed", "any-case"],
)
def test_files_without_a_level_get_the_default_the_folder_implies(
    tmp_path, files, default, expected
):
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    docs = data.load_folder(tmp_path, default_access=default)
    assert [d.meta["access"] for d in sorted(docs, key=lambda d: d.meta["source"])] == expected


def test_a_folder_that_mixes_declared_and_silent_files_needs_a_default(tmp_path):
    (tmp_path / "h.md").write_text(_GOOD, encoding="utf-8")
    (tmp_path / "notes.txt").write_text("Salaries are paid monthly.\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"1 do not: notes\.txt.*default_access='internal'"):
        data.load_folder(tmp_path)
    with pytest.raises(DataError, match=r"default_access='secret' is not one of"):
        data.load_folder(tmp_path, default_access="secret")


def test_build_index_refuses_a_folder_with_a_bad_access_level(tmp_path):
    from kit.indexing import build_index
    from kit.rag import RagError

    (tmp_path / "pay.md").write_text("---\ntitle: Pay\naccess: Secret\n---\nX.\n", "utf-8")
    with pytest.raises(RagError, match=r"Cannot load documents: .*pay\.md line 3"):
        build_index(tmp_path)


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("utf16.txt", "Pump speed: 40 rpm\n".encode("utf-16"), r"utf16\.txt line 1: holds NUL"),
        ("nul.md", b"# Notes\n\nfine\x00hidden\n", r"nul\.md line 3: holds NUL bytes"),
        ("latin1.html", "<p>Caf\xe9</p>".encode("latin-1"), r"latin1\.html line 1: not valid UTF"),
    ],
    ids=["utf-16", "nul-byte", "latin-1-html"],
)
def test_a_file_that_is_not_utf8_text_is_named_not_indexed(tmp_path, name, raw, message):
    (tmp_path / "ok.txt").write_text("The boiler pressure is 3 bar.\n", encoding="utf-8")
    (tmp_path / name).write_bytes(raw)
    with pytest.raises(DataError, match=message):
        data.load_folder(tmp_path)


def test_links_that_lead_nowhere_are_named_when_skipped(tmp_path):
    (tmp_path / "ok.txt").write_text("The boiler pressure is 3 bar.\n", encoding="utf-8")
    (tmp_path / "loop.txt").symlink_to(tmp_path / "loop.txt")
    (tmp_path / "gone.md").symlink_to(tmp_path / "deleted.md")
    with pytest.warns(UserWarning, match=r"2 link\(s\) that lead nowhere .*: gone\.md, loop\.txt"):
        docs = data.load_folder(tmp_path)
    assert [d.meta["source"] for d in docs] == ["ok.txt"]


def test_a_linked_sub_folder_is_read_once_and_a_saved_index_never(tmp_path):
    docs, shared = tmp_path / "docs", tmp_path / "shared"
    docs.mkdir()
    shared.mkdir()
    (docs / "a.md").write_text("The pump runs at forty rpm.\n", encoding="utf-8")
    (shared / "b.md").write_text("The boiler is serviced in May.\n", encoding="utf-8")
    (docs / "team").symlink_to(shared)  # a sub-folder that is a link: read like any other
    (docs / "up").symlink_to(docs)  # a loop: not read twice, nor forever
    (docs / "v3").mkdir()
    (docs / "v3" / "pay.md").write_text("Salaries are paid monthly.\n", encoding="utf-8")
    (docs / "current").symlink_to(docs / "v3")  # an alias: v3/pay.md keeps its own id
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "p.md").write_text("Not in the folder.\n", encoding="utf-8")
    (docs / "parent").symlink_to(tmp_path)  # above the folder: never read from there
    (docs / "sub.kit-index").mkdir()  # where the kit saved the index of docs/sub
    (docs / "sub.kit-index" / "notes.md").write_text("Not a document.\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing skipped, nothing to warn about
        sources = [d.meta["source"] for d in data.load_folder(docs)]
    assert sources == ["a.md", "team/b.md", "v3/pay.md"]


def test_an_id_yaml_reads_as_a_number_is_refused_with_the_quotes_that_keep_it(tmp_path):
    (tmp_path / "a.md").write_text("---\ntitle: A\nid: 0123\n---\nThe pump hums.\n", "utf-8")
    (tmp_path / "b.md").write_text('---\nid: "7"\n---\nThe boiler is serviced.\n', "utf-8")
    with pytest.raises(DataError, match=r'a\.md line 3: id 0123 reads as int 83.*id: "0123"'):
        data.load_folder(tmp_path)
    (tmp_path / "a.md").write_text('---\ntitle: A\nid: "0123"\n---\nThe pump hums.\n', "utf-8")
    assert sorted(d.meta["id"] for d in data.load_folder(tmp_path)) == ["0123", "7"]


def test_near_miss_question_files_are_told_the_fix(tmp_path):
    """A blank first line, a JSON array, ids separated by commas: each named with its fix."""
    (tmp_path / "blank.csv").write_text("\nquestion,answer\nWhat?,b\n", "utf-8")
    with pytest.raises(DataError, match=r"blank\.csv line 1: blank; the header line .* first"):
        data.load_questions(tmp_path / "blank.csv")
    (tmp_path / "array.jsonl").write_text('[{"question": "What?", "answer": "b"}]\n', "utf-8")
    with pytest.raises(DataError, match=r"got list; write one object per line \(JSONL\)"):
        data.load_questions(tmp_path / "array.jsonl")
    (tmp_path / "g.csv").write_text('question,answer,gold_doc_ids\nWhat?,b,"a.md, b.md"\n')
    with pytest.raises(DataError, match=r"'a\.md, b\.md' are not .*with ';', not ','"):
        data.load_questions(tmp_path / "g.csv", doc_ids=["a.md", "b.md"])


def test_a_bad_access_level_is_named_on_its_own_line(tmp_path):
    text = "---\naccessibility: wheelchair\naccess: confidental\n---\nThe lift is by the door.\n"
    (tmp_path / "lift.md").write_text(text, "utf-8")
    with pytest.raises(DataError, match=r"lift\.md line 3: access level 'confidental'"):
        data.load_folder(tmp_path)


def test_a_markdown_link_keeps_its_address(tmp_path):
    (tmp_path / "support.md").write_text(
        '# Support\n\nOpen a ticket on [the portal](https://support.example.com/t "Portal")'
        " or mail [us](mailto:help@example.com). ![logo](logo.png)\n",
        encoding="utf-8",
    )
    text = data.load_folder(tmp_path)[0].content
    assert "the portal (https://support.example.com/t)" in text
    assert "us (help@example.com)" in text and "logo.png" not in text
    (tmp_path / "faq.md").write_text(  # the front matter and code stay as written
        "---\nid: faq-7\ntitle: Reset, see [Step 2](#reset)\n---\n# FAQ\n\n"
        "Write `[text](url)` to link; [below](#install) stays a link within the page.\n",
        encoding="utf-8",
    )
    faq = next(d for d in data.load_folder(tmp_path) if d.meta["source"] == "faq.md")
    assert faq.meta["id"] == "faq-7" and faq.meta["title"] == "Reset, see [Step 2](#reset)"
    assert "[text](url)" in faq.content and "#install" not in faq.content


def test_front_matter_a_reader_would_see_is_never_ignored(tmp_path):
    (tmp_path / "late.md").write_text("\n---\naccess: confidential\n---\nSalaries.\n", "utf-8")
    with pytest.raises(DataError, match=r"late\.md line 1: blank lines or spaces before the front"):
        data.load_folder(tmp_path)
    (tmp_path / "late.md").unlink()
    (tmp_path / "notes.txt").write_text("---\nAccess: Confidential\n---\nSalaries.\n", "utf-8")
    (tmp_path / "open.txt").write_text("The canteen opens at noon.\n", "utf-8")
    docs = data.load_folder(tmp_path, default_access="public")
    assert {d.meta["source"]: d.meta["access"] for d in docs} == {
        "notes.txt": "confidential",
        "open.txt": "public",
    }


def test_a_skipped_bad_file_still_counts_as_one_that_declares_a_level(tmp_path):
    (tmp_path / "pay.md").write_text("---\ntitle: Pay\naccess: Secret\n---\nSalaries.\n", "utf-8")
    (tmp_path / "notes.txt").write_text("Salaries are paid monthly.\n", "utf-8")
    with (
        pytest.warns(UserWarning, match=r"pay\.md"),
        pytest.raises(DataError, match=r"1 do not: notes\.txt"),
    ):
        data.load_folder(tmp_path, skip_bad=True)  # not public by the typo's absence


def test_plain_text_rules_blank_ids_and_txt_front_matter_read_as_meant(tmp_path):
    """A .txt whose first line is a dashed rule has no front matter; a .txt's front matter is
    metadata, not text shown to the model; a blank ``id:`` falls back to the file's path."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "notes.txt").write_text(
        "--------\nMeeting notes\n--------\nThe pump is serviced every 500 hours.\n",
        encoding="utf-8",
    )
    (folder / "rules.txt").write_text(
        "---\ntitle: Holiday rules\naccess: public\n---\nStaff get 25 days of leave a year.\n",
        encoding="utf-8",
    )
    (folder / "leave.md").write_text(
        "---\nid:\naccess: public\n---\n# Leave\nParents get 16 weeks of leave.\n",
        encoding="utf-8",
    )
    docs = {d.meta["source"]: d for d in data.load_folder(folder, default_access="public")}
    assert "serviced every 500 hours" in docs["notes.txt"].content
    rules = docs["rules.txt"]
    assert rules.meta["title"] == "Holiday rules" and "access:" not in rules.content
    assert rules.content.strip() == "Staff get 25 days of leave a year."
    assert docs["leave.md"].meta["id"] == "leave.md"
