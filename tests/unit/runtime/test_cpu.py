"""What ftk reads about the CPU, and the precision `auto` picks from it."""

from __future__ import annotations

import pytest

from ftk.runtime.cpu import MEASURED, CpuInfo, cpu_info, cpu_precision, parse_cpuinfo

EPYC = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9B45
flags\t\t: fpu sse avx2 avx512f avx512_bf16 avx_vnni avx512_vnni
processor\t: 1
model name\t: AMD EPYC 9B45
flags\t\t: fpu sse avx2 avx512f avx512_bf16 avx_vnni avx512_vnni
"""
XEON = (
    "model name : Intel(R) Xeon(R) Platinum 8481C\n"
    "flags : avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"
)
GRAVITON = (
    "processor : 0\nBogoMIPS : 2100.00\nFeatures : fp asimd bf16 sve i8mm\nCPU part : 0xd40\n"
)


def test_parse_cpuinfo_reads_the_first_processor(tmp_path):
    model, flags = parse_cpuinfo(EPYC)
    assert model == "AMD EPYC 9B45"
    assert {"avx512f", "avx512_bf16", "avx_vnni"} <= flags
    path = tmp_path / "cpuinfo"
    path.write_text(XEON)
    info = cpu_info.__wrapped__(str(path))
    assert info.model == "Intel(R) Xeon(R) Platinum 8481C"
    assert info.bfloat16 == "amx_bf16"  # AMX first: it is the faster of the two
    assert info.to_json()["instruction_sets"] == [
        "AVX2",
        "AVX-512",
        "AVX512-BF16",
        "AMX-TILE",
        "AMX-BF16",
        "AMX-INT8",
    ]
    assert "AMX-BF16" in info.describe() and info.describe().startswith("Intel(R) Xeon")


def test_arm_features_and_a_missing_file(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(GRAVITON)
    arm = cpu_info.__wrapped__(str(path))
    assert "bf16" in arm.flags and arm.bfloat16 is None  # Arm's BF16 is recorded, not measured
    missing = cpu_info.__wrapped__(str(tmp_path / "absent"))
    assert missing.model and missing.flags == () and missing.cores >= 1


def test_this_machine_is_described():
    info = cpu_info()
    assert info.cores >= 1 and info.model
    assert info.describe().startswith(info.model)


@pytest.mark.parametrize(
    ("flags", "backend", "compute", "expected", "because"),
    [
        (("avx2",), "tensorflow", "text_encoder", "float32", "no bfloat16 instructions"),
        (("avx512_bf16",), "tensorflow", "text_encoder", "mixed_bfloat16", "1.22x float32"),
        (("avx512_bf16",), "tensorflow", "convnet", "float32", "measured 0.49x float32"),
        (("avx512_bf16",), "jax", "text_encoder", "float32", "measured 1.06x float32"),
        (("avx512_bf16", "amx_bf16"), "torch", "text_encoder", "mixed_bfloat16", "AMX-BF16"),
        (("avx512_bf16", "amx_bf16"), "tensorflow", "convnet", "float32", "is not measured"),
        (("avx512_bf16",), "tensorflow", "model", "float32", "is not measured"),
    ],
)
def test_cpu_precision_follows_the_measurements(flags, backend, compute, expected, because):
    precision, why = cpu_precision(backend, compute, CpuInfo("a CPU", 2, flags))
    assert precision == expected
    assert because in why


def test_every_measurement_names_where_it_was_taken():
    for (backend, instructions, _), (speedup, where) in MEASURED.items():
        assert backend in ("tensorflow", "jax", "torch")
        assert instructions in ("amx_bf16", "avx512_bf16")
        assert 0 < speedup < 5 and where
