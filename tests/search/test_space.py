from __future__ import annotations

import pytest

from archdesign.search import distributions
from archdesign.spaces import get_space, list_spaces


@pytest.mark.parametrize("name", list_spaces())
def test_every_space_maps_to_optuna_distributions(name: str) -> None:
    space = get_space(name)
    dists = distributions(space)
    defaults = space.defaults()
    for param in space.parameters:
        assert dists[param.name]._contains(dists[param.name].to_internal_repr(
            defaults[param.name]))
