"""zklock's public surface: one sorted __all__, every name importable, errors owned by "zklock"."""

from __future__ import annotations

import importlib
import inspect
import typing

import pytest

import zklock


def test_all_is_sorted_and_unique():
    assert list(zklock.__all__) == sorted(zklock.__all__)
    assert len(set(zklock.__all__)) == len(zklock.__all__)


def test_every_exported_name_is_importable():
    namespace: dict[str, object] = {}
    exec(f"from zklock import {', '.join(zklock.__all__)}", namespace)
    for name in zklock.__all__:
        assert namespace[name] is getattr(zklock, name)


def test_star_import_gives_exactly_all():
    namespace: dict[str, object] = {}
    exec("from zklock import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(zklock.__all__)


def test_errors_belong_to_zklock():
    for name in zklock.__all__:
        member = getattr(zklock, name)
        if inspect.isclass(member) and issubclass(member, BaseException):
            assert member.__module__ == "zklock", name


@pytest.mark.parametrize("module", ["zklock", "zklock.testing"])
def test_type_hints_and_source_of_every_class_and_function_resolve(module):
    # A class renamed into "zklock" would look its annotations up in zklock's namespace.
    public = importlib.import_module(module)
    for name in public.__all__:
        member = getattr(public, name)
        if inspect.isclass(member) or inspect.isfunction(member):
            assert isinstance(typing.get_type_hints(member), dict), name
            if not (inspect.isclass(member) and issubclass(member, BaseException)):
                assert inspect.getsource(member), name  # errors' source is not found: the price


def test_public_names_do_not_start_with_an_underscore():
    for name in zklock.__all__:
        assert not name.startswith("_") or name == "__version__", name


def test_private_modules_are_not_exported():
    for name in zklock.__all__:
        assert not inspect.ismodule(getattr(zklock, name)), name


def test_every_public_error_is_exported():
    from zklock import errors

    for name in errors.__all__:
        member = getattr(errors, name)
        if inspect.isclass(member):
            assert name in zklock.__all__, name


def test_version_is_a_string():
    assert isinstance(zklock.__version__, str)
    assert zklock.__version__.count(".") >= 1


def test_version_matches_the_distribution():
    from importlib.metadata import version

    assert version("zklock") == zklock.__version__
