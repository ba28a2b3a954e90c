"""Extra-vars files that Ansible will not template: every string a user gave is written as
``!unsafe``, so ``{{ lookup('pipe', ...) }}`` in a package argument stays text. Only the
controller's own expressions (:class:`Expression`, e.g. a reference to a secret) are left for
Ansible to evaluate.

Secrets are not in the vars file: it refers to them (:func:`secret_ref`) and they travel in a
second document (:func:`secrets_document`) that the runner hands to ansible-playbook through an
in-memory file (depot.execution.runner), never the disk, the environment or the artifacts."""

from __future__ import annotations

import yaml


class Expression(str):
    """A Jinja2 expression the controller wrote itself; the only strings Ansible may template."""


class _Dumper(yaml.SafeDumper):
    pass


def _unsafe_str(dumper, value):
    # ansible-core reads an ``!unsafe`` scalar by resolving its text as if it were unquoted, so
    # !unsafe '3' arrives as the integer 3 (and 'true' as a boolean, '1.5' as a float). A string
    # that reads as another type holds no template either: it goes plainly quoted, a string.
    if dumper.resolve(yaml.ScalarNode, value, (True, False)) != "tag:yaml.org,2002:str":
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="'")
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


SECRETS_VAR = "depot_secrets"


def secret_ref(name: str) -> Expression:
    """An expression that reads the secret ``name`` from the run's secrets document."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a secret name: {name!r}")
    return Expression("{{ %s['%s'] }}" % (SECRETS_VAR, name))


def secrets_document(secrets: dict[str, str]) -> str:
    """The extra vars holding the secrets (``!unsafe``: a secret is never templated either)."""
    return dump({SECRETS_VAR: dict(secrets)})
