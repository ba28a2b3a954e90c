"""The collection's argument specs (plugins/module_utils/_spec.py), so the API rejects options that
depot.software.package/script would reject, before anything is stored or run."""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from types import ModuleType

from depot.config import COLLECTION_ROOT

SPEC_FILE = COLLECTION_ROOT / "plugins" / "module_utils" / "_spec.py"

# The Python type each spec type accepts (raw: anything).
_TYPES = {"str": str, "path": str, "int": int, "bool": bool, "list": list, "dict": dict, "float": (int, float)}


@lru_cache
def spec() -> ModuleType:
    """plugins/module_utils/_spec.py, loaded from the checkout or the package's copy of the collection
    (it imports nothing of Ansible)."""
    loaded = importlib.util.spec_from_file_location("depot_collection_spec", SPEC_FILE)
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return module


def allowed_options(action: str, exclude: set[str] = frozenset()) -> dict[str, dict]:
    """Option name -> spec of what the ``package`` or ``script`` action accepts (the module's spec
    plus the options only the action plugin reads), minus ``exclude``."""
    s = spec()
    module_spec = s.PACKAGE_MODULE_SPEC if action == "package" else s.SCRIPT_MODULE_SPEC
    merged = {**module_spec, **s.ACTION_SPEC}
    return {name: option for name, option in merged.items() if name not in exclude}


def option_errors(options: dict, allowed: dict[str, dict], *, windows: bool | None = None) -> list[str]:
    """Problems with ``options``, each naming its key: unknown keys, wrong types, values outside
    the choices, detection rules that cannot be evaluated on the platform."""
    unknown = sorted(set(options) - set(allowed))
    errors = []
    if unknown:
        errors.append(f"unknown option(s): {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")
    for name, value in options.items():
        option = allowed.get(name)
        if option is None or value is None:
            continue
        expected = _TYPES.get(option.get("type", "str"))
        if expected and (not isinstance(value, expected) or (expected is int and isinstance(value, bool))):
            errors.append(f"{name} must be of type {option['type']}")
            continue
        if "choices" in option and value not in option["choices"]:
            errors.append(f"{name} must be one of {', '.join(map(str, option['choices']))}, not {value!r}")
    if isinstance(options.get("detection"), dict) and windows is not None:
        errors.extend(spec().detection_errors(options["detection"], windows))
    return errors
