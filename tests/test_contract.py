"""The method contract, checked on every method the registry knows (built-in and installed plugins)."""
import pytest

from reidkit.registry import METHODS
from reidkit.testing import check_method


@pytest.mark.parametrize("name", METHODS.names())
def test_registered_method_meets_the_contract(name, tmp_path):
    cls = METHODS.get(name)  # a broken plugin fails here, with its import error
    assert cls.name == name, f"entry point '{name}' loads a class whose name is {cls.name!r}"
    check_method(cls, tmp_path)


def test_example_plugin_meets_the_contract(example_method, tmp_path):
    check_method(example_method, tmp_path)
