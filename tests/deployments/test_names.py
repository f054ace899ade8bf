import ast
from pathlib import Path

import yaml
from prefect import Task

from booking.settings import PROJECT_ROOT
from deployments.names import ALL, ARRANGEMENTS, CONCERNS, WORK_POOL


def prefect_yaml() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())


def flow_name_at(entrypoint: str) -> str:
    """The name the entrypoint's @flow decorator gives, read without importing the module."""
    path, function = entrypoint.split(":")
    tree = ast.parse((PROJECT_ROOT / path).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == function:
            (decorator,) = node.decorator_list
            keyword = next(k for k in decorator.keywords if k.arg == "name")
            return ast.unparse(keyword.value)
    raise AssertionError(f"{function} not found in {path}")


def test_prefect_yaml_deploys_exactly_the_named_deployments() -> None:
    deployments = prefect_yaml()["deployments"]

    assert sorted(d["name"] for d in deployments) == sorted(d.name for d in ALL)
    assert {d["work_pool"]["name"] for d in deployments} == {WORK_POOL}


def test_each_entrypoint_flow_is_named_from_the_names_module() -> None:
    by_name = {d["name"]: d for d in prefect_yaml()["deployments"]}

    for deployment in ALL:
        entrypoint = by_name[deployment.name]["entrypoint"]
        assert Path(PROJECT_ROOT / entrypoint.split(":")[0]).exists()
        constant = flow_name_at(entrypoint)  # e.g. "WEBHOOKS.flow"
        assert constant.endswith(".flow")
        module_constant = constant.removesuffix(".flow")
        assert getattr(__import__("deployments.names").names, module_constant) == deployment


def test_arrangements_start_the_bundled_flow_or_each_concern() -> None:
    assert [d.name for d in ARRANGEMENTS["bundled"]] == ["post-commit"]
    assert ARRANGEMENTS["per-concern"] == CONCERNS


def test_no_step_carries_a_tag_and_every_capped_call_names_a_known_provider() -> None:
    """A tagged task run asks Prefect for a concurrency lease, renews and releases it, even
    for a tag without a limit; the providers' caps are held in the bookings database."""
    import importlib
    import pkgutil
    import re

    import tasks
    from booking.settings import PROVIDER_CAPS

    steps = [
        value
        for info in pkgutil.walk_packages(tasks.__path__, "tasks.")
        for value in vars(importlib.import_module(info.name)).values()
        if isinstance(value, Task)
    ]
    assert steps
    assert {tag for step in steps for tag in step.tags} == set()
    capped = {
        name
        for path in Path(tasks.__path__[0]).rglob("*.py")
        for name in re.findall(r'provider_slot\("([a-z]+)"\)', path.read_text())
    }
    assert capped == set(PROVIDER_CAPS)
