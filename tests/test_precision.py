"""mixed_precision 'auto': bf16 only where native bf16 is present and measured faster."""

from __future__ import annotations

import pytest

from tailtune import precision


@pytest.fixture(autouse=True)
def _fresh_decision(monkeypatch):
    # conftest turns native bf16 detection off for the suite; these tests check the real rule.
    monkeypatch.setattr(precision, "NATIVE_BF16_FLAGS", ("amx_bf16", "avx512_bf16"))
    precision.auto_precision.cache_clear()
    yield
    precision.auto_precision.cache_clear()


@pytest.mark.parametrize(
    ("flags", "speedup", "expected"),
    [
        (set(), 9.0, "no"),  # emulated bf16 is never probed, whatever it would measure
        ({"avx2", "fma"}, 9.0, "no"),
        ({"avx512_bf16"}, 1.5, "bf16"),
        ({"amx_bf16", "amx_tile"}, 2.0, "bf16"),
        ({"amx_bf16"}, 1.1, "no"),  # native, but not fast enough to be worth it
    ],
)
def test_cpu_decision_needs_native_bf16_and_a_measured_gain(monkeypatch, flags, speedup, expected):
    probed = []
    monkeypatch.setattr(precision, "cpu_info", lambda: ("Test CPU", flags))
    monkeypatch.setattr(precision, "cpu_bf16_speedup", lambda: probed.append(1) or speedup)
    assert precision.auto_precision("cpu") == expected
    assert precision.auto_precision("cpu") == expected
    assert len(probed) == (1 if set(precision.NATIVE_BF16_FLAGS) & flags else 0)  # decided once per process


def test_cpu_info_reads_the_model_and_flags(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu avx512_bf16 sse2\n\n"
                       "processor\t: 1\nmodel name\t: Test CPU 9000\nflags\t\t: fpu\n")  # fmt: skip
    monkeypatch.setattr(precision, "Path", lambda _: cpuinfo)
    assert precision.cpu_info() == ("Test CPU 9000", {"fpu", "avx512_bf16", "sse2"})
    monkeypatch.setattr(precision, "Path", lambda _: tmp_path / "missing")
    assert precision.cpu_info() == ("?", set())


def test_speedup_probe_measures_both_precisions():
    assert precision.cpu_bf16_speedup(repeats=1) > 0
