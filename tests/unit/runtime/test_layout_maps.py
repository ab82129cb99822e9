"""`ftk.runtime.model_parallel` without devices: the backbone class is found from the preset
without building it, and a backbone without a keras-hub layout map is refused by name. (Training
on 2 and 4 host devices: tests/system/test_model_parallel.py.)"""

import pytest

from ftk.errors import ConfigError
from ftk.runtime.model_parallel import backbone_class, distribution


def test_a_backbone_without_a_layout_map_is_refused_by_name(tiny_preset):
    assert backbone_class(str(tiny_preset)).__name__ == "BertBackbone"
    with pytest.raises(ConfigError, match='BertBackbone has none .*"data_parallel"'):
        distribution(str(tiny_preset), mesh=None)


def test_a_weight_that_does_not_split_says_which_model_devices_fit():
    from types import SimpleNamespace

    from ftk.runtime.model_parallel import explain_indivisible

    jax_text = (  # what JAX 0.10 raises for SmolLM2-135M's 9 heads over 2 devices
        "Sharding NamedSharding(mesh=Mesh('batch': 1, 'model': 2), spec=P('model', None, "
        "'batch')) implies that array axis 0 is partitioned 2 times, but the dimension size is "
        "9 (full shape: (9, 64, 576), per-dimension tiling factors: [2, 1, 1] should evenly "
        "divide the shape)"
    )
    mesh = SimpleNamespace(shape=(1, 2), devices=SimpleNamespace(size=2))
    error = explain_indivisible(ValueError(jax_text), mesh)
    assert isinstance(error, ConfigError)
    assert "(9, 64, 576)" in str(error) and "must divide it (3, 9)" in str(error)
    assert "a model axis of 2 on 2 devices" in str(error)
    assert explain_indivisible(ValueError("something else"), mesh) is None
