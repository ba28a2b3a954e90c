"""Extra-vars files that Ansible will not template: every string a user gave is written as
``!unsafe``, so ``{{ lookup('pipe', ...) }}`` in a package argument stays text. Only the
controller's own expressions (:class:`Expression`, e.g. reading a secret from the run's
environment) are left for Ansible to evaluate."""

from __future__ import annotations

import yaml


class Expression(str):
    """A Jinja2 expression the controller wrote itself; the only strings Ansible may template."""


class _Dumper(yaml.SafeDumper):
    pass


def _unsafe_str(dumper, value):
    return dumper.represent_scalar("!unsafe", value, style="'")


def _expression(dumper, value):
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style="'")


def _mapping(dumper, value):
    # Keys are names we chose (option names); values may be user input.
    pairs = [(dumper.represent_scalar("tag:yaml.org,2002:str", str(k)), dumper.represent_data(v)) for k, v in value.items()]
    return yaml.MappingNode("tag:yaml.org,2002:map", pairs, flow_style=False)


_Dumper.add_representer(str, _unsafe_str)
_Dumper.add_representer(Expression, _expression)
_Dumper.add_representer(dict, _mapping)


def dump(data: dict) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True)


def env_lookup(name: str) -> Expression:
    """An expression that reads ``name`` from the environment of the ansible-playbook process."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not an environment variable name: {name!r}")
    return Expression("{{ lookup('ansible.builtin.env', '%s') }}" % name)
