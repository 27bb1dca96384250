"""mixed_precision 'auto': bf16 exactly where the hardware has native bf16, decided from its features alone."""

from __future__ import annotations

import pytest
import torch

from tailtune.training import precision


@pytest.fixture(autouse=True)
def _fresh_decision(monkeypatch):
    # conftest turns native bf16 detection off for the suite; these tests check the real rule.
    monkeypatch.setattr(precision, "NATIVE_BF16_FLAGS", ("amx_bf16", "avx512_bf16"))
    precision.auto_precision.cache_clear()
    yield
    precision.auto_precision.cache_clear()


def _no_compute(*args, **kwargs):
    raise AssertionError("the precision rule must not time or run anything")


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (set(), "no"),
        ({"avx2", "fma", "avx512f"}, "no"),  # emulated bf16 is slower than fp32
        ({"avx512_bf16"}, "bf16"),
        ({"amx_bf16", "amx_tile"}, "bf16"),
        ({"amx_bf16", "avx512_bf16"}, "bf16"),
    ],
)
def test_cpu_decision_is_a_function_of_the_flags_alone(monkeypatch, flags, expected):
    """The same flags give the same choice every time, and nothing is run or timed to decide it."""
    monkeypatch.setattr(precision, "cpu_info", lambda: ("Test CPU", flags))
    monkeypatch.setattr(torch, "autocast", _no_compute)
    monkeypatch.setattr(torch.nn.functional, "linear", _no_compute)
    for _ in range(3):
        precision.auto_precision.cache_clear()
        assert precision.auto_precision("cpu") == expected
    choice, reason = precision.auto_decision("cpu")
    assert choice == expected and reason.startswith("Test CPU has ")
    native = sorted(set(precision.NATIVE_BF16_FLAGS) & flags)
    assert (f"native bf16 ({', '.join(native)})" in reason) if native else ("no native bf16" in reason)


def test_decision_is_logged_once_per_process(monkeypatch, caplog):
    monkeypatch.setattr(precision, "cpu_info", lambda: ("Test CPU", {"avx512_bf16"}))
    with caplog.at_level("INFO", logger="tailtune.training.precision"):
        assert precision.auto_precision("cpu") == precision.auto_precision("cpu") == "bf16"
    assert [r.getMessage() for r in caplog.records] == ["mixed precision auto: bf16 (Test CPU has native bf16 "
                                                        "(avx512_bf16))"]  # fmt: skip


def test_other_devices(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert precision.auto_decision("cuda") == ("no", "the GPU does not support bf16")
    assert precision.auto_decision("mps")[0] == "no"


def test_cpu_info_reads_the_model_and_flags(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu avx512_bf16 sse2\n\n"
                       "processor\t: 1\nmodel name\t: Test CPU 9000\nflags\t\t: fpu\n")  # fmt: skip
    monkeypatch.setattr(precision, "Path", lambda _: cpuinfo)
    assert precision.cpu_info() == ("Test CPU 9000", {"fpu", "avx512_bf16", "sse2"})
    monkeypatch.setattr(precision, "Path", lambda _: tmp_path / "missing")
    assert precision.cpu_info() == ("?", set())
