# -*- coding: utf-8 -*-
# Copyright: Depot developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Exit-code classes (DESIGN §2.2). Defaults are MECM's and Intune's; every class is
replaceable per call; a code may sit in one class only."""

from __future__ import annotations

from ansible_collections.depot.software.plugins.module_utils._spec import EXIT_CODE_CLASSES

FAILURE = "failure"

DEFAULTS = {
    "success": (0, 1707),
    "soft_reboot": (3010,),
    "hard_reboot": (1641,),
    "retry": (1618,),
    "already": (),
}
MSIX_RETRY = (15605, 15618)          # ERROR_INSTALL_OPEN_PACKAGE_FAILED-style MSIX "in use" codes
UNINSTALL_ALREADY = (1605, 1614)     # ERROR_UNKNOWN_PRODUCT, ERROR_PRODUCT_UNINSTALLED


def to_int32(value):
    """A code as a signed 32-bit integer: 4294967295 and -1 are the same code."""
    value = int(value)
    return ((value + 2 ** 31) % 2 ** 32) - 2 ** 31


class ExitCodeError(ValueError):
    pass


class Classifier(object):
    """Maps a code to its class. A code the caller lists moves out of the default class it was in
    (``success: [0, 3010]`` makes 3010 a success); a code the caller lists in two classes is an error."""

    def __init__(self, overrides=None, state="present", installer_type=None):
        defaults = {name: list(codes) for name, codes in DEFAULTS.items()}
        if installer_type == "msix":
            defaults["retry"] += MSIX_RETRY
        if state == "absent":
            defaults["already"] += UNINSTALL_ALREADY
        given = {}
        for name, codes in (overrides or {}).items():
            if codes is None:
                continue
            if name not in EXIT_CODE_CLASSES:
                raise ExitCodeError("exit_codes.%s is not a class; use one of %s" % (name, ", ".join(EXIT_CODE_CLASSES)))
            given[name] = [self._code(name, c) for c in codes]
        self.by_code = {}
        for name, codes in given.items():
            for code in codes:
                other = self.by_code.get(code)
                if other is not None and other != name:
                    raise ExitCodeError("exit code %d is in two classes: exit_codes.%s and exit_codes.%s" % (code, other, name))
                self.by_code[code] = name
        for name, codes in defaults.items():
            if name not in given:
                for code in codes:
                    self.by_code.setdefault(code, name)

    @staticmethod
    def _code(name, code):
        if isinstance(code, bool):
            raise ExitCodeError("exit_codes.%s: %r is not an integer" % (name, code))
        try:
            return to_int32(code)
        except (TypeError, ValueError):
            raise ExitCodeError("exit_codes.%s: %r is not an integer" % (name, code))

    def classify(self, rc):
        """The class of ``rc``; ``failure`` for a code in no class, None when nothing ran."""
        if rc is None:
            return None
        return self.by_code.get(to_int32(rc), FAILURE)
