"""`chipbench report`: pooling, matching across machines, normalization, roofline flags and bad input, on
hand-made results files with known answers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from chipbench.cli import main
from chipbench.report import assemble, figures, page, summary, views
from tests.report_docs import bench, doc, write

A, B = "cpu-test-a-2c-avx2", "gpu-test-b-x1"


def _two_machines(tmp_path: Path) -> Path:
    # B fits dtype=auto to bf16 and max_rows=-1 to a cap; A to fp32 and the whole table.
    write(tmp_path / A / "1.json", doc(A, [
        bench("dlrm.train_step", {"preset": "tiny", "max_rows": -1}, {"dtype": "fp32", "max_rows": 0}, median_s=2e-3),
        bench("llama.forward", {"flavor": "tiny"}, {"dtype": "fp32"}, median_s=4e-3, vh="old"),
    ]))  # fmt: skip
    write(tmp_path / B / "1.json", doc(B, [
        bench("dlrm.train_step", {"preset": "tiny", "max_rows": -1}, {"dtype": "bf16", "max_rows": 1000}, median_s=1e-3),
        bench("llama.forward", {"flavor": "tiny"}, {"dtype": "fp32"}, median_s=1e-3, vh="new"),
    ], device="NVIDIA H100 80GB HBM3", kind="cuda"))  # fmt: skip
    return tmp_path


def test_cases_match_on_the_request_and_label_fitted_differences(tmp_path: Path) -> None:
    rep = assemble.build([_two_machines(tmp_path)], baseline=A)
    row = next(r for r in rep.rows if r.bench == "dlrm.train_step")
    assert row.name == "dlrm.train_step[max_rows=-1,preset=tiny]"
    cell = row.cells[B]
    assert cell.speedup == pytest.approx(2.0)
    assert cell.speedup_ci is not None and cell.speedup_ci[0] < 2.0 < cell.speedup_ci[1]
    assert cell.speedup_ci[1] / cell.speedup_ci[0] < 1.1  # 40 samples at 1% spread: a tight interval
    assert set(cell.differences) == {"dtype bf16 (baseline fp32)", "max_rows 1000 (baseline 0)"}
    assert row.cells[A].speedup == 1.0 and not row.not_comparable


def test_other_code_is_not_comparable_unless_asked(tmp_path: Path) -> None:
    root = _two_machines(tmp_path)
    row = next(r for r in assemble.build([root], baseline=A).rows if r.bench == "llama.forward")
    assert row.cells[B].speedup is None and "version hash new vs the baseline's old" in row.not_comparable[B]
    row = next(
        r
        for r in assemble.build([root], baseline=A, ignore_version_hash=True).rows
        if r.bench == "llama.forward"
    )
    assert row.cells[B].speedup == pytest.approx(4.0) and not row.not_comparable


def test_runs_of_one_machine_and_code_are_pooled(tmp_path: Path) -> None:
    for i, med in enumerate((1e-3, 1.2e-3, 1.1e-3)):
        write(tmp_path / f"{i}.json", doc(A, [bench("calib.matmul", {"dtype": "fp32"}, median_s=med, seed=i)],
                                          date=f"2026-11-0{i + 1}T00:00:00+00:00"))  # fmt: skip
    rep = assemble.build([tmp_path])
    (p,) = rep.pooled
    assert len(p.runs) == 3 and p.run_medians_s == pytest.approx([1e-3, 1.2e-3, 1.1e-3])
    assert p.ci_s[0] < p.median_s < p.ci_s[1]
    assert p.ci_s[0] <= 1.02e-3 and p.ci_s[1] >= 1.18e-3  # run-to-run spread is in the interval
    lines = page._row_lines(rep, rep.rows[0])
    assert lines[0].runs.startswith("3 (1-1.2)")


def test_newest_version_hash_kept_and_the_older_runs_named(tmp_path: Path) -> None:
    write(tmp_path / "1.json", doc(A, [bench("calib.copy", {}, vh="v1")], date="2026-11-01T00:00:00+00:00"))
    write(tmp_path / "2.json", doc(A, [bench("calib.copy", {}, vh="v2")], date="2026-11-02T00:00:00+00:00"))
    rep = assemble.build([tmp_path])
    assert [p.version_hash for p in rep.pooled] == ["v2"]
    assert any("1 older run(s) of 1 case(s)" in n for n in rep.notes)
    (lo,) = rep.left_out
    assert (
        lo.case == "calib.copy"
        and lo.path.endswith("1.json")
        and lo.reason.startswith("older code: version hash v1")
    )
    assert rep.machines[0].files == (str(tmp_path / "2.json"),) and rep.machines[0].files_read == 2


def test_old_files_infer_the_request_from_their_suite(tmp_path: Path) -> None:
    # Written before `requested` was recorded: the default suite's case asked dtype=auto, fitted to fp32.
    b = bench("calib.matmul", {"dtype": "fp32"}, record_request=False)
    b["params"] = {"dtype": "fp32"}
    write(tmp_path / "1.json", doc(A, [b], suite="default"))
    (p,) = assemble.build([tmp_path]).pooled
    assert p.requested == {"dtype": "auto"} and not p.requested_known


def test_roofline_flags_a_point_above_its_roof(tmp_path: Path) -> None:
    # Roof for fp32: min(0.4 TFLOP/s, I x 20 GB/s). 1e9 FLOPs over 1e8 bytes (I = 10) in 1 ms is 1 TFLOP/s,
    # above the 0.2 TFLOP/s roof at I = 10; 1e8 FLOPs in 1 ms (0.1 TFLOP/s) is under it.
    write(tmp_path / "1.json", doc(A, [
        bench("dlrm.train_step", {"preset": "a", "dtype": "fp32"}, flops=1e9, nbytes=1e8),
        bench("dlrm.inference", {"preset": "a", "dtype": "fp32"}, flops=1e8, nbytes=1e7),
        bench("dlrm.mlp", {"preset": "a", "dtype": "fp32"}, flops=1e8),
    ]))  # fmt: skip
    rep = assemble.build([tmp_path])
    points, off = views.roofline_points(rep.machines[0], rep.pooled)
    by = {p.name.split("[")[0]: p for p in points}
    assert by["dlrm.train_step"].roof == pytest.approx(0.2) and by["dlrm.train_step"].above_roof
    assert by["dlrm.inference"].roof == pytest.approx(0.2) and not by["dlrm.inference"].above_roof
    assert off == ["dlrm.mlp[dtype=fp32,preset=a]"]
    html = page.to_html(rep)
    assert "above its roof (counting error)" in html


def test_limits_say_compute_or_memory_bound(tmp_path: Path) -> None:
    write(tmp_path / "1.json", doc(A, [
        bench("dlrm.train_step", {"preset": "a"}, metrics={"share_of_ceiling_flops": 0.8, "share_of_ceiling_bw": 0.1}),
        bench("dlrm.inference", {"preset": "a"}, metrics={"share_of_ceiling_flops": 0.1, "share_of_ceiling_bw": 0.7}),
        bench("llama.forward", {"flavor": "a"}, metrics={"share_of_ceiling_flops": 1.3}),
        bench("dlrm.mlp", {"preset": "a"}, metrics={"share_of_ceiling_flops": 0.9}),
    ]))  # fmt: skip
    lim = {x.name.split("[")[0]: x for x in views.limits(assemble.build([tmp_path]).pooled)}
    assert set(lim) == {"dlrm.train_step", "dlrm.inference", "llama.forward"}  # whole steps only
    assert lim["dlrm.train_step"].bound == "compute-bound" and lim["dlrm.inference"].bound == "memory-bound"
    assert lim["llama.forward"].over and not lim["dlrm.train_step"].over


def test_sweeps(tmp_path: Path) -> None:
    write(tmp_path / "1.json", doc(A, [
        bench("dlrm.train_step", {"preset": "a"}, metrics={"samples_per_s": 100.0}),
        bench("dlrm.train_step", {"preset": "a"}, world=2, metrics={"samples_per_s": 180.0}),
        *(bench("dlrm.inference", {"preset": "a", "batch_size": bs}, median_s=bs * 1e-5,
                metrics={"samples_per_s": 1e5}) for bs in (64, 512)),
        *(bench("comm.all_reduce", {"size_mib": s}, world=2, nbytes=s * 2**20, bytes_convention="collective algbw",
                metrics={"gbps_busbw": s * 1.0}) for s in (1, 16)),
    ]))  # fmt: skip
    pooled = assemble.build([tmp_path]).pooled
    (sc,) = views.scaling_series(pooled)
    assert [(p.x, p.y) for p in sc.points] == [(1, 1.0), (2, pytest.approx(0.9))]  # 180 / (2 x 100)
    (co,) = views.collective_series(pooled)
    assert [p.x for p in co.points] == [2**20, 16 * 2**20] and co.name == "comm.all_reduce x2"
    lat = views.latency_series(pooled)
    assert {s.name.split()[-1] for s in lat} == {"p50", "p99"} and all(len(s.points) == 2 for s in lat)


def test_no_common_case_is_said(tmp_path: Path) -> None:
    write(tmp_path / A / "1.json", doc(A, [bench("calib.copy", {})]))
    write(tmp_path / B / "1.json", doc(B, [bench("calib.matmul", {"dtype": "bf16"})]))
    rep = assemble.build([tmp_path], baseline=A)
    assert any(f"{B} has no case in common with the baseline" in n for n in rep.notes)
    assert page.headline(rep) == [f"{B}: no case in common with the baseline."]


def test_energy_and_price_shown_when_present_else_not_measured(tmp_path: Path) -> None:
    write(
        tmp_path / "1.json",
        doc(A, [bench("dlrm.train_step", {"preset": "a"}, metrics={"samples_per_joule": 3.0})]),
    )
    html = page.to_html(assemble.build([tmp_path]))
    assert 'id="fig-energy"' in html and "not measured: none of these results carries a price" in html


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: (p / "empty").mkdir(), "no results files"),
        (lambda p: (p / "bad.json").write_text("{not json"), "is not valid JSON"),
        (lambda p: write(p / "new.json", doc(A, [bench("calib.copy", {})], schema=99)), "newer than this chipbench"),
        (lambda p: (p / "x.json").write_text('{"benchmarks": [{"name": "x", "stats": {}}]}'), "no raw samples"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, make, message: str, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    make(tmp_path)
    target = next(tmp_path.iterdir())
    out = tmp_path / "out" / "r.html"
    (tmp_path / "out").mkdir()
    assert main(["report", str(target), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and not out.exists()


def test_skip_bad_reports_the_rest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "good.json", doc(A, [bench("calib.copy", {})]))
    (tmp_path / "bad.json").write_text("{oops")
    out = tmp_path / "r.html"
    assert main(["report", str(tmp_path), "-o", str(out)]) == 2 and not out.exists()
    assert "--skip-bad" in capsys.readouterr().err
    md = tmp_path / "r.md"
    assert main(["report", str(tmp_path), "-o", str(out), "--skip-bad", "--markdown", str(md)]) == 0
    err = capsys.readouterr().err
    assert "left out" in err and "bad.json" in err and err.count("bad.json") == 1
    assert out.exists() and "bad.json" in md.read_text()


def test_unwritable_output_and_unknown_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "r" / "1.json", doc(A, [bench("calib.copy", {})]))
    (tmp_path / "afile").write_text("")
    assert main(["report", str(tmp_path / "r"), "-o", str(tmp_path / "afile" / "x.html")]) == 2
    assert "cannot be created" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "r"), "-o", str(tmp_path / "x.html"), "--baseline", "nope"]) == 2
    assert "--baseline 'nope' is not among the machines" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()


def test_hostile_strings_are_text_never_markup(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    b = bench("dlrm.train_step", {"preset": evil, "who": "@octocat https://evil.example $x$"})
    b["extra_info"]["flags"] = [f"flag {evil}"]
    d = doc(f"cpu-{evil}", [b], device=evil)
    d["chipbench"]["argv"] = ["chipbench", "run", evil]
    write(tmp_path / "1.json", d)
    # A second machine: the same case and a family named by the file, matched (family lines, bars), and a
    # run of its newest commit left out for a reason the file gives (the left-out table).
    quiet, loud = bench(f"{evil}.x", {"preset": evil}), bench(f"{evil}.x", {"preset": "b"})
    loud["extra_info"]["disturbed"] = f"why {evil}"
    write(tmp_path / "2.json", doc(B, [bench("dlrm.train_step", b["extra_info"]["requested"]), quiet, loud]))
    write(tmp_path / "3.json", doc(f"cpu-{evil}", [bench(f"{evil}.x", {"preset": evil})]))
    rep = assemble.build([tmp_path], title=f"title {evil}", baseline=B)
    html = page.to_html(rep)
    assert len(summary.standings(rep)[0].families) == 2 and rep.left_out
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown, as text
    assert f"why {evil}" not in html and 'class="family-line"' in html and 'id="fig-speedup"' in html
    md = page.to_markdown(rep)
    # Outside code spans (literal text in CommonMark) no tag, mention, link or math is left.
    outside = re.sub(r"(`+).+?\1", "", md)
    assert "<script" not in outside and "<img" not in outside and "alert(1)" in md
    assert not any(s in outside for s in ("@octocat", "https://", "$x$"))


def test_pytest_benchmark_front_door_file(tmp_path: Path) -> None:
    # A plain pytest-benchmark file (saved with --benchmark-save-data) and our extra_info.
    b = bench("calib.copy", {"size_mib": 16})
    b["name"] = "test_benchmark[calib.copy[size_mib=16]]"
    d = {"machine_info": {"cpu": {"brand_raw": "Some CPU"}, "machine": "aarch64",
                          "chipbench_machine_id": "cpu-some-cpu-4c-neon"},
         "benchmarks": [b], "datetime": "2026-11-02T00:00:00", "version": "5.1.0"}  # fmt: skip
    write(tmp_path / "pb.json", d)
    rep = assemble.build([tmp_path])
    assert rep.machines[0].id == "cpu-some-cpu-4c-neon" and rep.rows[0].name == "calib.copy[size_mib=16]"
    assert rep.pooled[0].command.startswith("pytest benchmarks")


def test_committed_results_report(tmp_path: Path) -> None:
    out, md = tmp_path / "r.html", tmp_path / "r.md"
    root = Path(__file__).resolve().parents[2] / "results"
    dirs = sorted(str(p) for p in root.glob("cpu-*") if p.is_dir())
    assert main(["report", *dirs, "-o", str(out), "--markdown", str(md)]) == 0
    html = out.read_text()
    assert html.count("<script") == html.count("</script>") and "Roofline" in html
    # Nothing fetched at view time: no external script or style, and a policy that forbids requests.
    assert not re.search(r"<script[^>]*\ssrc=|<link[^>]*\shref=", html)
    assert "default-src 'none'" in html
    assert json.dumps(len(dirs)) in md.read_text() or "machine" in md.read_text()


def test_a_default_run_relabelled_as_a_gpu_box_matches_every_case(tmp_path: Path) -> None:
    # The example: the same default-suite file as from a GPU box, where dtype=auto resolves to
    # bf16, max_rows=-1 fits other caps, and names differ. Every case must still match, labelled.
    root = Path(__file__).resolve().parents[2] / "results" / "cpu-intel-r-xeon-r-processor-2c-amx"
    src = next(p for p in sorted(root.glob("*.json")) if (d := json.loads(p.read_text()))["chipbench"]["suite"] == "default"
               and all("requested" in b["extra_info"] for b in d["benchmarks"]))  # fmt: skip
    cpu = json.loads(src.read_text())
    gpu = json.loads(src.read_text())
    gid = "cuda-nvidia-h100-80gb-hbm3-x1-test-cpu-16c"
    gpu["chipbench"]["machine_id"] = gpu["machine_info"]["chipbench_machine_id"] = gid
    gpu["chipbench"]["environment"] = {}
    gpu["machine_info"]["device"] = {"kind": "cuda", "name": "NVIDIA H100 80GB HBM3", "count": 1}
    for b in gpu["benchmarks"]:
        cfg = b["extra_info"]["config"]
        if "dtype" in cfg and b["extra_info"]["requested"].get("dtype", "auto") == "auto":
            cfg["dtype"] = "bf16" if cfg["dtype"] == "fp32" else "fp32"
        if "max_rows" in cfg:
            cfg["max_rows"] = 0
        b["params"] = {
            **b["extra_info"]["requested"],
            **{k: cfg[k] for k in ("dtype", "max_rows") if k in cfg},
        }
        b["name"] = "gpu:" + b["name"]  # names differ too
    write(tmp_path / "cpu.json", cpu)
    write(tmp_path / "gpu.json", gpu)
    rep = assemble.build([tmp_path], baseline=cpu["chipbench"]["machine_id"])
    n = len(cpu["benchmarks"])
    matched = [
        r for r in rep.rows if all(c.speedup is not None for c in r.cells.values()) and len(r.cells) == 2
    ]
    assert len(rep.rows) == n and len(matched) == n
    labelled = [r for r in matched if r.cells[gid].differences]
    assert labelled and all(
        any(d.startswith(("dtype ", "max_rows ")) for d in r.cells[gid].differences) for r in labelled
    )


def _disturbed_newest(root: Path) -> Path:
    """An older quiet file, and the newest commit's run of which one case ran on a disturbed machine."""
    write(root / "1.json", doc(A, [bench("calib.copy", {}), bench("calib.matmul", {"dtype": "fp32"})]))
    d = doc(A, [bench("calib.copy", {}, median_s=5e-3), bench("calib.matmul", {"dtype": "bf16"})],
            date="2026-11-02T00:00:00+00:00")  # fmt: skip
    d["commit_info"]["id"] = "fedcba9876543210"
    d["benchmarks"][0]["extra_info"]["disturbed"] = "its threads waited 30% of their runnable time"
    write(root / "2.json", d)
    return root


def test_overlapping_inputs_count_once_and_disturbed_runs_are_left_out(tmp_path: Path) -> None:
    root = _disturbed_newest(tmp_path / "r")
    rep = assemble.build([root, root / "1.json"])
    copy = next(p for p in rep.pooled if p.bench == "calib.copy")
    assert len(copy.runs) == 1 and copy.median_s == pytest.approx(1e-3)  # once, and not the disturbed run
    assert any("1 run(s) measured on a disturbed machine left out" in n for n in rep.notes)
    (m,) = rep.machines
    assert len(m.files) == 2 and m.files_read == 2 and m.commits == ("abcdef12", "fedcba98")
    (lo,) = rep.left_out
    assert (lo.case, lo.commit) == ("calib.copy", "fedcba98") and "waited 30%" in lo.reason


def test_machines_table_counts_the_files_shown_and_names_the_newest_commits_left_out_runs(
    tmp_path: Path,
) -> None:
    # The case: today's run, all disturbed, is left out; the table must not claim its commit or date.
    root = tmp_path / "r"
    write(root / "1.json", doc(A, [bench("calib.copy", {})]))
    d = doc(A, [bench("calib.copy", {}, median_s=5e-3), bench("calib.matmul", {"dtype": "fp32"})],
            date="2026-11-09T00:00:00+00:00")  # fmt: skip
    d["commit_info"]["id"] = "fedcba9876543210"
    for b in d["benchmarks"]:
        b["extra_info"]["disturbed"] = "its threads waited 41% of their runnable time"
    write(root / "2.json", d)
    rep = assemble.build([root])
    (m,) = rep.machines
    assert m.files == (str(root / "1.json"),) and m.files_read == 2
    assert (
        m.commits == ("abcdef12",) and m.dates[-1].startswith("2026-11-01") and m.newest_commit == "fedcba98"
    )
    (mlo,) = summary.left_out_by_machine(rep)
    assert mlo.newest_commit == "fedcba98" and not mlo.older
    assert [(x.case, x.reason.split(":")[0]) for x in mlo.newest] == [
        ("calib.copy", "disturbed"), ("calib.matmul[dtype=fp32]", "disturbed")]  # fmt: skip
    html = page.to_html(rep)
    assert "1 of 2" in html and "2 run(s) of <code>cpu-test-a-2c-avx2</code>'s newest commit" in html
    assert "<code>calib.matmul[dtype=fp32]</code>" in html and "waited 41%" in html
    assert "fedcba98" not in html.split('id="machines"')[1].split("</table>")[0]  # not in the table
    md = page.to_markdown(rep)
    assert "| 1 of 2 |" in md and "newest commit fedcba98" in md


def test_include_disturbed_shows_them_labelled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _disturbed_newest(tmp_path / "r")
    out = tmp_path / "r.html"
    assert main(["report", str(root), "-o", str(out), "--include-disturbed"]) == 0
    assert "1 run(s) measured on a disturbed machine shown, labelled" in capsys.readouterr().err
    html = out.read_text()
    assert "disturbed: 1 of 2 run(s) measured on a disturbed machine, shown by --include-disturbed" in html
    rep = assemble.build([root], include_disturbed=True)
    copy = next(p for p in rep.pooled if p.bench == "calib.copy")
    assert len(copy.runs) == 2 and copy.disturbed and not rep.left_out
    (line,) = page._row_lines(rep, next(r for r in rep.rows if r.bench == "calib.copy"))
    assert line.bad and line.notes[0].startswith("disturbed: 1 of 2 run(s)")


def test_a_soaked_run_shows_burst_against_sustained(tmp_path: Path) -> None:
    b = bench("dlrm.train_step", {"preset": "a"})
    b["extra_info"]["measurement"] = {"extra": {"soak": {
        "seconds": 60.2, "steps": 900, "before": {"clock_mhz_mean": 3400.0, "temperature_c_max": 45.0},
        "after": {"clock_mhz_mean": 3100.0, "temperature_c_max": 71.0}}}}  # fmt: skip
    write(tmp_path / "1.json", doc(A, [b]))
    rep = assemble.build([tmp_path])
    (line,) = page._row_lines(rep, rep.rows[0])
    assert "sustained (soaked 60 s, clock 3400 -> 3100 MHz, temperature 45 -> 71 C)" in line.notes


def _families(root: Path, extra_dlrm: int = 0, llama: bool = True) -> Path:
    """B against A: dlrm 2x and 8x (geometric mean 4x), llama 0.5x; `extra_dlrm` more dlrm cases at 4x."""
    cases = [("dlrm.train_step", {"preset": "a"}, 2e-3, 1e-3), ("dlrm.inference", {"preset": "a"}, 8e-3, 1e-3),
             *([("llama.forward", {"flavor": "a"}, 1e-3, 2e-3)] if llama else []),
             *(("dlrm.mlp", {"preset": "a", "batch_size": 2**i}, 4e-3, 1e-3) for i in range(extra_dlrm))]  # fmt: skip
    for mid, side in ((A, 2), (B, 3)):
        write(
            root / mid / "1.json",
            doc(mid, [bench(b, req, median_s=c[side]) for c in cases for b, req in [c[:2]]]),
        )
    return root


def test_family_lines_give_each_familys_geometric_mean_interval_and_cases(tmp_path: Path) -> None:
    rep = assemble.build([_families(tmp_path)], baseline=A)
    (st,) = summary.standings(rep)
    assert st.machine == B and st.overall is not None
    assert st.overall.value == pytest.approx(2.0) and st.overall.cases == 3 and st.overall.few
    assert (st.overall.faster, st.overall.slower) == (2, 1)
    dlrm, llama = st.families  # the buyer's families in their order
    assert (dlrm.family, dlrm.title, dlrm.cases) == ("dlrm", "ranking (DLRM)", 2)
    assert dlrm.value == pytest.approx(4.0) and 1.9 < dlrm.ci[0] < 4.0 < dlrm.ci[1] < 8.5  # cases resampled
    assert (llama.title, llama.cases) == ("LLM training (Llama)", 1) and llama.value == pytest.approx(0.5)
    cell = next(r for r in rep.rows if r.family == "llama").cells[B]
    assert cell.speedup_ci is not None
    assert llama.ci == pytest.approx(cell.speedup_ci, rel=0.03)  # one case: its own interval
    assert page.family_line(dlrm).startswith("ranking (DLRM): 4x (95% CI ")
    assert page.family_line(dlrm).endswith("over 2 matched cases (few cases: a hint)")


def test_a_headline_on_fewer_than_5_cases_carries_a_caution(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.html"
    assert main(["report", str(_families(tmp_path / "few")), "-o", str(out), "--baseline", A]) == 0
    printed = capsys.readouterr().out
    assert f"Caution: {B}'s figure rests on 3 matched cases, fewer than 5" in printed
    assert "  ranking (DLRM): 4x (95% CI" in printed and "  LLM training (Llama): 0.5x" in printed
    html = out.read_text()
    assert '<div class="caution" role="alert">' in html and "rests on 3 matched cases, fewer than 5" in html
    assert re.findall(r'class="family-line" data-family="(\w+)" data-cases="(\d+)"', html) == [
        ("dlrm", "2"), ("llama", "1")]  # fmt: skip
    rep = assemble.build([_families(tmp_path / "enough", extra_dlrm=3)], baseline=A)
    (h, c) = page.headline(rep)  # the headline and ranking stand on 6 and 5; the llama line on 1, and says so
    assert "over 6 matched cases" in h and c.startswith(
        f"Caution: {B}'s line(s) for LLM training (Llama) (1) rest"
    )
    rep = assemble.build([_families(tmp_path / "more", extra_dlrm=3, llama=False)], baseline=A)
    assert len(page.headline(rep)) == 1 and 'class="caution"' not in page.to_html(rep)  # 5 ranking cases


def test_bars_are_grouped_by_family_and_sorted_fastest_first(tmp_path: Path) -> None:
    rep = assemble.build([_families(tmp_path, extra_dlrm=1)], baseline=A)
    assert [r.bench for r in summary.bar_rows(rep)] == [
        "dlrm.inference", "dlrm.mlp", "dlrm.train_step", "llama.forward"]  # 8x, 4x, 2x; then 0.5x  # fmt: skip
    fig = figures.speedup_bars(rep)
    assert fig is not None
    fams, names = fig.data[0].y
    assert list(fams) == ["ranking (DLRM)"] * 3 + ["LLM training (Llama)"]
    assert [n.split("[")[0] for n in names] == [
        "dlrm.inference",
        "dlrm.mlp",
        "dlrm.train_step",
        "llama.forward",
    ]


def test_cases_not_on_the_roofline_are_folded_behind_a_summary(tmp_path: Path) -> None:
    write(tmp_path / "1.json", doc(A, [bench("dlrm.train_step", {"preset": "a"}, flops=1e8, nbytes=1e7),
                                       *(bench("dlrm.mlp", {"preset": "a", "n": i}, flops=1e8) for i in range(3))]))  # fmt: skip
    html = page.to_html(assemble.build([tmp_path]))
    folded = html.split('<details class="muted not-on-roofline"><summary>')[1].split("</details>")[0]
    assert folded.startswith("3 case(s) not on the roofline")
    assert folded.count("<li><code>dlrm.mlp[") == 3
