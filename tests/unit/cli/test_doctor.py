"""`ftk doctor`: the machine lines (no Keras), the probe table and its errors. A real probe
(training steps in a fresh process) is in tests/integration/test_cli.py."""

from __future__ import annotations

import pytest
from helpers import write_tiny_config

from ftk.cli.doctor import ProbeResult, machine_lines, probe_lines
from ftk.cli.main import main
from ftk.runtime.cpu import CpuInfo

AMX = CpuInfo("Intel Xeon", 2, ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"))


def test_machine_lines_say_what_auto_picks_per_backend(monkeypatch):
    monkeypatch.setattr("ftk.cli.doctor.gpu_devices", lambda: [])
    for name in ("TF_CONFIG", "JAX_NUM_PROCESSES", "SLURM_JOB_ID", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    lines = machine_lines(
        AMX, "text_classification", "text_encoder", {"tensorflow": "2.21", "torch": "2.13"}
    )
    text = "\n".join(lines)
    assert lines[0].startswith("CPU:       Intel Xeon, 2 cores; AVX2, AVX-512, AVX512-BF16")
    assert "missing: jax" in text and "GPU:       none found" in text
    assert "launcher:  no launcher variables: one process" in text
    tf_line = next(line for line in lines if line.strip().startswith("tensorflow"))
    assert "mixed_bfloat16" in tf_line and "AMX-BF16" in tf_line and "1.49x" in tf_line


def _probe(backend, precision, steps_s):
    record = {"steps_s": steps_s, "batch_size": 16, "first_step_s": 9.0, "peak_rss_mb": 2000.0}
    return ProbeResult(backend, precision, record)


def test_probe_lines_rank_by_speed_against_the_configs_setting():
    results = [
        _probe("tensorflow", "float32", 1.5),
        _probe("tensorflow", "mixed_bfloat16", 1.9),
        ProbeResult("jax", "float32", error="ran past 600 s"),
        _probe("torch", "mixed_bfloat16", 1.2),
    ]
    lines = probe_lines(results, ("tensorflow", "float32"))
    ranked = [line.split()[:2] for line in lines[1:4]]
    assert ranked == [
        ["tensorflow", "mixed_bfloat16"],
        ["tensorflow", "float32"],
        ["torch", "mixed_bfloat16"],
    ]
    assert "1.27x the config's setting" in lines[1] and "1.00x" in lines[2]
    assert "jax" in lines[4] and "failed: ran past 600 s" in lines[4]
    assert "runtime.backend = 'tensorflow', runtime.precision = 'mixed_bfloat16'" in lines[-1]
    assert "not what 'auto' picks" in lines[-1]  # no `auto` given
    auto = {"tensorflow": "mixed_bfloat16"}
    assert "not what 'auto' picks" not in probe_lines(results, ("tensorflow", "float32"), auto)[-1]


def test_doctor_without_probe_reads_the_project(tmp_path, tiny_preset, tiny_csv, capsys):
    path = write_tiny_config(tmp_path, tiny_preset, tiny_csv)
    assert main(["doctor", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("CPU:") and "text_classification (a text_encoder" in out
    assert "ftk doctor --probe" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--probe", "--backends", "tensorflow,mxnet"], "--backends: mxnet not installed here"),
        (["--probe", "--steps", "0"], "--steps and --warmup must be at least 1"),
        (["--config", "nowhere/config.toml"], "--config nowhere/config.toml: no such file"),
    ],
)
def test_doctor_errors_are_one_line(
    argv, message, tmp_path, tiny_preset, tiny_csv, capsys, monkeypatch
):
    path = write_tiny_config(tmp_path, tiny_preset, tiny_csv)
    monkeypatch.chdir(tmp_path)
    assert (
        main(["doctor", *argv] if "--config" in argv else ["doctor", "--config", str(path), *argv])
        == 2
    )
    out, err = capsys.readouterr()
    assert out == ""  # nothing printed before the error
    err = err.strip()
    assert err.startswith("ftk: error: ") and message in err and "\n" not in err
