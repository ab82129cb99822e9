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
