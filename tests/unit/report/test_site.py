"""The static leaderboard site (``ddr site build``, :mod:`ddr.report.site`) as files: every page and
link is local, each cell page embeds exactly the board the leaderboard ranks, published numbers sit
beside the measurements, method pages hold parameters, recipe, provenance, cost and plots, bundles
are linked from the rows whose runs they hold. The browser behaviour is in test_site_browser.py."""

from __future__ import annotations

import html
import json
import re
import zipfile
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from helpers.site_data import CIFAR, BuiltSite, built_site

from ddr.cli.main import main
from ddr.errors import DdrError
from ddr.report.leaderboard import build_leaderboard
from ddr.report.site import SITE_MARKER, build_site, find_bundles


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> BuiltSite:
    return built_site(tmp_path_factory)


def embedded(page: str, element_id: str) -> dict:
    match = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', page, re.S)
    assert match is not None, element_id
    return json.loads(match.group(1))


def links(page: str) -> list[tuple[str, str, str]]:
    """(tag, attribute, value) of every src/href in ``page``."""
    return [(m.group(1).lower(), m.group(2).lower(), html.unescape(m.group(3)))
            for m in re.finditer(r'<(\w+)[^>]*?\s(src|href)="([^"]*)"', page)]


def test_the_site_has_an_index_a_page_per_cell_and_per_method(site: BuiltSite) -> None:
    pages = site.result.pages
    assert pages[0] == "index.html"
    assert sorted(p for p in pages if p.startswith("cells/")) == [
        "cells/cifar10-ipc10.html", "cells/digits-ipc1.html", "cells/digits-ipc2.html"]
    assert sorted(p for p in pages if p.startswith("methods/")) == [
        f"methods/{m}.html" for m in ("datm", "dm", "herding", "random", "rded")]
    for name in ("assets/ddr.css", "assets/board.js", "assets/site.js", "leaderboard.csv", "leaderboard.md",
                 SITE_MARKER):
        assert (site.out / name).is_file(), name
    index = site.page("index.html")
    for page in pages[1:]:
        assert f'href="{page}"' in index


def test_every_link_stays_in_the_folder_and_resolves(site: BuiltSite) -> None:
    external = []
    for page in site.out.rglob("*.html"):
        for tag, attr, value in links(page.read_text(encoding="utf-8")):
            parsed = urlparse(value)
            if parsed.scheme == "data":  # inline (the empty icon): nothing is fetched
                continue
            if parsed.scheme or value.startswith("//"):
                assert tag == "a" and attr == "href", (page, tag, value)  # a link a reader may follow, never a load
                external.append(value)
                continue
            target = (page.parent / unquote(parsed.path)).resolve()
            assert target.is_relative_to(site.out.resolve()) and target.is_file(), (page, value)
    assert set(external) <= {"https://github.com/VICO-UoE/DatasetCondensation", "https://github.com/NUS-HPC-AI-Lab/DATM",
                             "https://github.com/LINs-lab/RDED"}
    for asset in (site.out / "assets").iterdir():
        text = asset.read_text(encoding="utf-8")
        assert "http://" not in text and "https://" not in text and "@import" not in text and "url(" not in text


def test_a_cell_page_embeds_the_ranked_board_and_the_published_numbers(site: BuiltSite) -> None:
    page = site.page("cells/cifar10-ipc10.html")
    (board,) = [b for b in build_leaderboard(site.rows, 0.5) if b.dataset == "cifar10"]
    data = embedded(page, "ddr-data")
    assert [e["label"] for e in data["boards"][0]["entries"]] == [e.label for e in board.entries] == \
        ["datm", "rded", "dm", "random"]
    assert data["boards"][0]["snapshots"]["0.50"]["datm"]["group"] == board.entries[0].group
    extra = embedded(page, "ddr-site")["entries"]
    assert {k: (v["labels"], v["storage"]) for k, v in extra.items()} == {
        m: ("soft" if strategy != "hard" else "hard", storage) for m, (_, _, strategy, storage) in CIFAR.items()}
    assert extra["dm"]["href"] == "../methods/dm.html"
    assert [b["name"] for b in extra["dm"]["bundles"]] == ["dm-cifar10.zip"]
    assert [b["name"] for b in extra["random"]["bundles"]] == [f"{site.run_id('random')}.zip"]
    assert extra["datm"]["bundles"] == [] and len(extra["dm"]["bundles"][0]["sha256"]) == 64
    reported = page.split('<section class="reported"', 1)[1].split("</section>", 1)[0]
    dm_row = re.search(r'<tr class="reported-row measured" data-method="dm">(.*?)</tr>', reported).group(1)
    assert '<a href="../methods/dm.html">dm</a>' in dm_row and ">0.489<" in dm_row and ">+2.1<" in dm_row
    assert 'data-method="datm"' in reported and ">-0.8<" in reported and ">+19.0<" in reported
    assert 'class="reported-row unmeasured" data-method="mtt"' in reported
    assert 'href="cifar10-ipc10.csv"' in page and '<img class="plot" src="../plots/pareto_cifar10_ipc10.svg"' in page
    assert '<script src="../assets/board.js"></script><script src="../assets/site.js"></script>' in page
    assert "<noscript><pre># ddr leaderboard" in page
    assert "Reported (published) vs measured" not in site.page("cells/digits-ipc1.html")  # nothing published


def test_a_method_page_has_description_parameters_recipe_provenance_cost_and_plots(site: BuiltSite) -> None:
    page = site.page("methods/dm.html")
    assert "<dd>Dataset Condensation with Distribution Matching</dd>" in page and "<dd>WACV 2023</dd>" in page
    assert "<td>iterations</td><td>int</td><td>20000</td>" in page  # the parameter schema
    assert "Authors' recipe for this cell (cifar10 IPC 10): ZCA off; iterations=20000" in page and "Source: VICO-UoE" in page
    section = page.split('<a href="../cells/cifar10-ipc10.html">cifar10, IPC 10</a>', 1)[1]
    assert "<dt>method parameters</dt><dd>augmentation=&quot;dsa&quot;" in section
    assert f"<td>{site.run_id('dm')[:12]}</td>" in section
    assert '<a href="../bundles/dm-cifar10.zip" download>dm-cifar10.zip</a>' in section
    assert "<dt>storage</dt><dd>30.0 KiB</dd>" in section and "<dt>distill wall</dt><dd>12.0 s</dd>" in section
    assert "reported (published)" in section and "0.489 (Guo et al., ICLR 2024 (DATM), Table 1; ConvNet-3, hard " \
                                                 "labels); measured − reported +2.1 points" in section
    if site.result.plots:
        assert '<img class="plot" src="../plots/accuracy_vs_ipc_cifar10.svg"' in page
        assert (site.out / "plots" / "accuracy_vs_ipc_cifar10.svg").read_text().lstrip().startswith("<?xml")
    rded = site.page("methods/rded.html")
    assert "reported (published)</td><td>0.502 (Sun et al., CVPR 2024 (RDED), Table 1; ConvNet, soft labels)" in rded


def test_bundles_are_copied_and_unmatched_files_named(site: BuiltSite) -> None:
    assert sorted(site.result.bundles) == sorted(["dm-cifar10.zip", f"{site.run_id('random')}.zip"])
    assert site.result.unmatched_bundles == ["other.zip"]
    assert (site.out / "bundles" / "dm-cifar10.zip").read_bytes() == (site.bundles / "dm-cifar10.zip").read_bytes()
    assert "2 bundle(s) linked; not linked: other.zip" in site.result.summary()


def test_a_ddr_export_bundle_is_read_through_its_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          site: BuiltSite) -> None:
    manifest = pytest.importorskip("ddr.bundle.manifest")
    folder = tmp_path / "b"
    folder.mkdir()
    for name in ("good.zip", "bad.zip"):
        with zipfile.ZipFile(folder / name, "w") as z:
            z.writestr("manifest.json", "{}")
            z.writestr("bundle.json", "{}")

    def read(path: Path, check: bool = True) -> dict:
        if Path(path).name == "bad.zip":
            raise ValueError("member 'bundle.json' does not match its sha256")
        return {"runs": [{"run_id": site.run_id("datm")}], "sha256": "ab" * 32}

    monkeypatch.setattr(manifest, "read_manifest", read)
    linked, other = find_bundles(folder, [r["run_id"] for r in site.rows])
    assert [(b.path.name, b.run_ids, b.sha256, b.checked) for b in linked] == [
        ("good.zip", {site.run_id("datm")}, "ab" * 32, True)]
    assert [(b.path.name, b.error) for b in other] == [("bad.zip", "member 'bundle.json' does not match its sha256")]


def test_bad_input_is_a_clear_error(tmp_path: Path, site: BuiltSite) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    with pytest.raises(DdrError, match="not empty and holds no site ddr wrote"):
        build_site(site.rows, foreign, plots=False)
    assert (foreign / "thesis.tex").read_text() == "keep me"
    with pytest.raises(DdrError, match="a file, not a folder"):
        build_site(site.rows, foreign / "thesis.tex", plots=False)
    with pytest.raises(DdrError, match="--bundles .*: not a directory"):
        build_site(site.rows, tmp_path / "new", bundles=tmp_path / "absent", plots=False)
    with pytest.raises(DdrError, match="no runs to put on the site"):
        build_site([], tmp_path / "new", plots=False)
    assert not (tmp_path / "new").exists()


def test_a_rebuild_replaces_the_previous_site(tmp_path: Path, site: BuiltSite) -> None:
    out = tmp_path / "site"
    digits = [r for r in site.rows if r["dataset"] == "digits"]
    build_site(site.rows, out, plots=False, reported=False)
    assert (out / "cells" / "cifar10-ipc10.html").exists()
    assert "Reported (published) vs measured" not in (out / "cells" / "cifar10-ipc10.html").read_text()
    result = build_site(digits, out, plots=False)
    assert not (out / "cells" / "cifar10-ipc10.html").exists() and result.plots == []
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left behind


def test_cli_site_build(tmp_path: Path, site: BuiltSite, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "www"
    assert main(["site", "build", "--db", str(site.db), "--where", "dataset=cifar10", "--bundles", str(site.bundles),
                 "--no-plots", "--w", "0.3", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"wrote {out}: index.html, 1 cell page(s), 4 method page(s), 0 plot(s), "
                                   f"2 bundle(s) linked; not linked: other.zip")
    assert "open " in captured.err and (out / "index.html").is_file()
    assert '<b id="w-value">0.30</b>' in (out / "cells" / "cifar10-ipc10.html").read_text()
    assert main(["site", "build", "--db", str(site.db), "-o", str(out), "--bundles", str(tmp_path / "nope")]) == 2
    assert "--bundles" in capsys.readouterr().err
    assert main(["site"]) == 0 and "build" in capsys.readouterr().out


def test_cells_whose_names_slug_alike_get_their_own_pages(tmp_path: Path) -> None:
    from helpers.results import make_row

    rows = [make_row("A", [0.1, 0.12], [0.2, 0.22], dataset="set:one"),
            make_row("A", [0.1, 0.12], [0.2, 0.22], dataset="set-one")]
    result = build_site(rows, tmp_path / "s", plots=False)
    assert sorted(p for p in result.pages if p.startswith("cells/")) == ["cells/set-one-ipc1-2.html",
                                                                         "cells/set-one-ipc1.html"]
    index = (tmp_path / "s" / "index.html").read_text()
    assert 'href="cells/set-one-ipc1.html">set-one</a>' in index and 'href="cells/set-one-ipc1-2.html">set:one</a>' in index
