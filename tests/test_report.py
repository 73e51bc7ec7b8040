"""The evaluation table: families in order with "all" last, and the margin arithmetic right."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from inpaintlab.report import format_table, main


def _m(psnr: float, ssim: float = 0.9, acc: float = 0.8, n: int = 10) -> dict:
    return {"psnr_masked": psnr, "ssim": ssim, "l1_masked": 0.05, "accuracy": acc, "n": n}


METRICS = {
    "model": {
        "all": _m(24.0, n=30),  # first in the file, must still be printed last
        "box": _m(25.0, ssim=0.9123),
        "irregular": _m(27.0),
        "outpaint": _m(19.0, acc=0.6543),
        "area_bins": {"0-10": _m(30.0, n=12), "10-30": _m(20.0, n=18)},
    },
    "baselines": {
        "telea": {
            "box": _m(23.0),
            "irregular": _m(26.0),
            "outpaint": _m(14.5),
            "all": _m(21.0),
            "area_bins": {"0-10": _m(29.0), "10-30": _m(21.5)},
        },
        "ns": {"box": _m(23.5), "irregular": _m(27.5), "outpaint": _m(13.0), "all": _m(21.2)},
    },
}


def _rows(table: str) -> dict[str, list[str]]:
    """First column -> cells of each data row of every pipe table in the text."""
    rows = {}
    for line in table.splitlines():
        if line.startswith("|") and "---" not in line:
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def test_families_in_order_with_all_last() -> None:
    table = format_table(METRICS)
    header = table.splitlines()[0]
    for column in ("model PSNR", "Telea PSNR", "NS PSNR", "margin", "model SSIM", "accuracy"):
        assert column in header
    main_table = table.split("\n\n")[0]
    families = [c for c in _rows(main_table) if c != "mask family"]
    assert families == ["box", "irregular", "outpaint", "all"]


def test_margin_is_over_the_better_baseline() -> None:
    rows = _rows(format_table(METRICS))
    # columns: model PSNR, Telea PSNR, NS PSNR, margin, SSIM, accuracy, n
    assert rows["box"][:4] == ["25.00", "23.00", "23.50", "+1.50"]
    assert rows["irregular"][3] == "-0.50"  # NS beats the model here
    assert rows["outpaint"][3] == "+4.50"
    assert rows["all"][3] == "+2.80"
    assert rows["box"][4] == "0.9123"
    assert rows["outpaint"][5] == "0.6543"
    assert rows["all"][6] == "30"


def test_area_bins_get_their_own_table() -> None:
    table = format_table(METRICS)
    assert "area bins" in table
    rows = _rows(table)
    # NS has no area bins: shown as "-" and the margin uses Telea alone
    assert rows["0-10"][:4] == ["30.00", "29.00", "-", "+1.00"]
    assert rows["10-30"][:4] == ["20.00", "21.50", "-", "-1.50"]


def test_area_bins_per_family_layout() -> None:
    """area_bins may also hold a family breakdown per bin: one table per bin."""
    metrics = {
        "model": {"all": _m(24.0), "area_bins": {"0-10": {"box": _m(30.0), "all": _m(29.0)}}},
        "baselines": {"telea": {"all": _m(22.0), "area_bins": {"0-10": {"all": _m(28.0)}}}},
    }
    sections = format_table(metrics).split("\n\n")
    assert "0-10" in sections[1]
    assert sections[2].splitlines()[0].startswith("| mask family")
    rows = _rows(sections[2])
    assert rows["all"][:3] == ["29.00", "28.00", "+1.00"]
    assert rows["box"][:3] == ["30.00", "-", "-"]


def test_is_a_markdown_pipe_table() -> None:
    lines = format_table(METRICS).split("\n\n")[0].splitlines()
    assert all(line.startswith("| ") and line.endswith(" |") for line in lines)
    assert re.fullmatch(r"\| -{3,} (\| -{2,}: )+\|", lines[1])  # numbers right-aligned
    assert len({line.count("|") for line in lines}) == 1


def test_no_model_section_is_an_error() -> None:
    with pytest.raises(ValueError, match="model"):
        format_table({"baselines": {}})


def test_main_prints_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(METRICS))
    assert main([str(path)]) == 0
    assert "| box" in capsys.readouterr().out


@pytest.mark.parametrize("content", [None, "{oops", '{"other": 1}'])
def test_main_bad_file_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None
) -> None:
    path = tmp_path / "eval.json"
    if content is not None:
        path.write_text(content)
    assert main([str(path)]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")


def test_full_size_tables_come_first_with_the_margin_over_the_best_method() -> None:
    def m(psnr: float, ms: float = 1.0) -> dict:
        return {"psnr_masked": psnr, "ssim": 0.9, "accuracy": 0.8, "n": 2, "ms": ms}

    metrics = {
        "model": {"box": m(20.0), "all": m(20.0)},
        "baselines": {"telea": {"box": m(19.0), "all": m(19.0)}},
        "full_size": {
            "512": {
                "n": 2,
                "model": {"box": m(22.0, 30.0), "all": m(22.0, 30.0)},
                "baselines": {
                    "ns": {"box": m(21.5), "all": m(21.5)},
                    "fsr": {"box": m(23.0, 2500.0), "all": m(23.0, 2500.0)},
                },
            }
        },
    }
    text = format_table(metrics)
    assert text.index("full size, 512x512 px, through predict") < text.index("at the training size")
    box = next(line for line in text.splitlines() if line.startswith("| box") and "23.00" in line)
    assert "-1.00" in box  # 22.0 against FSR's 23.0, not NS's 21.5
    assert "FSR 2500" in text and "model 30" in text  # time per image


def test_readme_block_is_rewritten_from_eval_json(tmp_path):
    """make run's `report --readme README.md`: the block between the markers becomes the tables
    of this eval.json; the text around it stays; a file without the markers is a one-line error."""
    from inpaintlab.report import README_END, README_START, format_table, main

    metrics = {
        "model": {"box": {"psnr": 20.0, "ssim": 0.8, "accuracy": 0.3, "n": 2}},
        "baselines": {"telea": {"box": {"psnr": 19.0, "n": 2}}},
    }
    eval_json = tmp_path / "eval.json"
    eval_json.write_text(json.dumps(metrics))
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{README_START}\nold tables\n{README_END}\n\n## next\n")
    assert main([str(eval_json), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "old tables" not in text and format_table(metrics) in text
    assert text.startswith("# title\n\n") and text.endswith(f"{README_END}\n\n## next\n")
    plain = tmp_path / "plain.md"
    plain.write_text("no markers\n")
    assert main([str(eval_json), "--readme", str(plain)]) == 2
    assert plain.read_text() == "no markers\n"
