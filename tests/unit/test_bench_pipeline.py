"""benchmarks/bench_pipeline.py: its reader of Snakemake benchmark files, and its power-law fit."""

import importlib.util
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("bench_pipeline", ROOT / "benchmarks/bench_pipeline.py")
bench = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = bench  # its dataclass looks its module up there
spec.loader.exec_module(bench)

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_reads_per_rule_and_per_wildcard_files(tmp_path):
    write(tmp_path / "train_tokenizer/larp.tsv",
          HEADER + "588.31\t0:09:48\t812.40\t2100.0\t790.0\t795.0\t12.5\t40.1\t98.7\t580.2\n")
    # two repeats (repeat("x.tsv", 2)): medians are reported
    write(tmp_path / "make_table1.tsv", HEADER + "5.0\t0:00:05\t300.0\t900\t280\t290\t0\t0\t90\t4.5\n"
                                              "7.0\t0:00:07\t320.0\t900\t280\t290\t0\t0\t80\t6.5\n")
    table = bench.read_benchmarks(tmp_path)
    assert list(table["stage"]) == ["train_tokenizer@larp", "make_table1"]  # longest first
    cols = ["repeats", "s", "max_rss", "cpu_time", "mean_load"]
    assert list(table.iloc[0][cols]) == [1, 588.31, 812.4, 580.2, 98.7]
    assert list(table.iloc[1][cols]) == [2, 6.0, 310.0, 5.5, 85.0]


def test_unsampled_job_reads_as_missing_memory(tmp_path):
    """A job that ends before Snakemake's first sample has NA after h:m:s; its wall time still counts."""
    write(tmp_path / "make_synthetic.tsv", HEADER + "0.41\t0:00:00" + "\tNA" * 8 + "\n")
    row = bench.read_benchmarks(tmp_path).iloc[0]
    assert row["s"] == 0.41 and math.isnan(row["max_rss"]) and math.isnan(row["cpu_time"])


def test_extended_format_columns_are_accepted(tmp_path):
    extended = HEADER.rstrip("\n") + "\tjobid\trule_name\twildcards\tparams\tthreads\tcpu_usage\tresources"
    row = "50.2\t0:00:50\t600\t1\t1\t1\t1\t1\t99\t49.7\t3\tencode_tokens\t{}\t{}\t1\t99\t{}"
    write(tmp_path / "encode_tokens/larp.tsv", f"{extended}\tinput_size_mb\n{row}\t-\n")
    assert bench.read_benchmarks(tmp_path).iloc[0]["s"] == 50.2


def test_missing_folder_is_empty_and_other_files_are_refused(tmp_path):
    assert bench.read_benchmarks(tmp_path / "absent").empty
    write(tmp_path / "x.tsv", "a\tb\n1\t2\n")
    with pytest.raises(ValueError, match="expected a Snakemake benchmark file"):
        bench.read_benchmarks(tmp_path)


def test_fitted_exponent_recovers_a_power_law():
    sizes = [64, 128, 256, 512]
    quadratic = bench.Scaling("s", "s", "w", sizes, [3e-6 * n**2 for n in sizes], "x/s", [1.0] * 4)
    assert quadratic.exponent == pytest.approx(2.0)
    assert bench.Scaling("s", "s", "w", [2, 8], [0.1, 0.4], "x/s", [1, 1]).exponent == pytest.approx(1.0)
