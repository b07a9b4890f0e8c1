"""The canary scanner finds a planted canary in every encoding, and nothing in a clean tree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from async_pipeline.redaction import Redactor
from async_pipeline.testing import (
    CanaryHit,
    canary_forms,
    canary_samples,
    new_canary,
    scan_for_canary,
)

JUNK = b"\x00\xff\xfe binary \xc3( junk \x80\n"


def _plant_every_sample(root: Path, canary: str) -> dict[str, Path]:
    planted = {}
    for number, (name, sample) in enumerate(canary_samples(canary).items()):
        path = root / f"level{number % 3}" / "nested" / f"{name}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(JUNK + sample + JUNK)
        planted[name] = path
    return planted


def test_every_encoding_of_an_awkward_canary_differs_from_the_raw_value() -> None:
    forms = canary_forms(new_canary())
    assert {"raw", "hex", "url", "url-plus", "json-ascii", "json-utf8"} <= forms.keys()
    assert {"shell-single-quoted", "shell-double-quoted", "base64-align2"} <= forms.keys()
    assert all(form != forms["raw"] for name, form in forms.items() if name != "raw")
    assert all(len(form) >= 16 for form in forms.values())


def test_equal_forms_of_a_plain_canary_are_reported_once_as_raw() -> None:
    canary = new_canary(awkward=False)
    assert "url" not in canary_forms(canary)
    assert scan_for_canary(canary, captured=[canary]) == [CanaryHit("captured[0]", "raw")]


def test_every_sample_is_found_under_its_own_encoding_name() -> None:
    canary = new_canary()
    forms = canary_forms(canary)
    for name, sample in canary_samples(canary).items():
        hits = scan_for_canary(canary, captured={name: JUNK + sample + JUNK})
        assert hits, name
        assert name not in forms or CanaryHit(name, name) in hits


def test_scanner_finds_a_canary_planted_in_every_encoding_anywhere_in_a_tree(
    tmp_path: Path,
) -> None:
    canary = new_canary()
    planted = _plant_every_sample(tmp_path, canary)
    hits = scan_for_canary(canary, trees=[tmp_path])
    forms = canary_forms(canary)
    for name, path in planted.items():
        assert name not in forms or CanaryHit(str(path), name) in hits
    assert {hit.location for hit in hits} == {str(path) for path in planted.values()}


def test_scanner_reports_nothing_in_a_clean_tree(tmp_path: Path) -> None:
    _plant_every_sample(tmp_path, new_canary())  # another canary's leaks are not this one's
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "junk").write_bytes(JUNK * 100)
    assert scan_for_canary(new_canary(), trees=[tmp_path]) == []


def test_scanner_reads_captured_bytes_and_text_under_their_labels() -> None:
    canary = new_canary()
    samples = canary_samples(canary)
    captured = {"mcp-response": samples["json-ascii"].decode(), "cli-stdout": samples["url"]}
    assert scan_for_canary(canary, captured=captured) == [
        CanaryHit("cli-stdout", "url"),
        CanaryHit("mcp-response", "json-ascii"),
    ]
    assert scan_for_canary(canary, captured=[b"clean", samples["hex"]]) == [
        CanaryHit("captured[1]", "hex")
    ]


def test_scanner_accepts_a_single_file_and_skips_symlinked_folders(tmp_path: Path) -> None:
    canary = new_canary(awkward=False)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "leak.txt").write_text(canary)
    scanned = tmp_path / "scanned"
    scanned.mkdir()
    os.symlink(outside, scanned / "link", target_is_directory=True)
    assert scan_for_canary(canary, trees=[scanned]) == []
    assert scan_for_canary(canary, trees=[outside / "leak.txt"]) == [
        CanaryHit(str(outside / "leak.txt"), "raw")
    ]


def test_new_canaries_are_unique_and_the_plain_kind_needs_no_quoting() -> None:
    first, second = new_canary(), new_canary()
    assert first != second
    plain = new_canary("token", awkward=False)
    assert plain.startswith("token-")
    assert plain.replace("-", "").isalnum()


@pytest.mark.parametrize("chunk_size", [1, 7, 4096])
def test_a_tree_written_through_the_redactor_has_zero_canary_hits(
    tmp_path: Path, chunk_size: int
) -> None:
    canary = new_canary()
    source, sink = tmp_path / "source", tmp_path / "sink"
    _plant_every_sample(source, canary)
    redactor = Redactor({"CANARY": canary})
    for path in source.rglob("*.bin"):
        stream = redactor.stream()
        data = path.read_bytes()
        out = b"".join(
            stream.feed(data[at : at + chunk_size]) for at in range(0, len(data), chunk_size)
        )
        target = sink / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(out + stream.flush())
    assert scan_for_canary(canary, trees=[source]) != []
    assert scan_for_canary(canary, trees=[sink]) == []
