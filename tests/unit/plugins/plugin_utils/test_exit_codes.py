import pytest

from ansible_collections.depot.software.plugins.plugin_utils._exit_codes import Classifier, ExitCodeError, to_int32


@pytest.mark.parametrize("rc, expected", [
    (0, "success"), (1707, "success"), (3010, "soft_reboot"), (1641, "hard_reboot"),
    (1618, "retry"), (1603, "failure"), (1, "failure"), (-1, "failure"), (None, None),
])
def test_default_classes_for_install(rc, expected):
    assert Classifier().classify(rc) == expected


def test_already_only_on_uninstall():
    assert Classifier(state="present").classify(1605) == "failure"
    assert Classifier(state="absent").classify(1605) == "already"
    assert Classifier(state="absent").classify(1614) == "already"


def test_msix_retry_codes():
    assert Classifier(installer_type="msix").classify(15605) == "retry"
    assert Classifier(installer_type="msix").classify(15618) == "retry"
    assert Classifier(installer_type="msi").classify(15618) == "failure"


@pytest.mark.parametrize("unsigned, signed", [(4294967295, -1), (2147483648, -2147483648), (3221225477, -1073741819), (5, 5)])
def test_signed_32_bit_normalisation(unsigned, signed):
    assert to_int32(unsigned) == signed
    assert to_int32(signed) == signed


def test_unsigned_and_signed_forms_classify_alike():
    c = Classifier({"retry": [3221225477]})
    assert c.classify(-1073741819) == "retry"
    assert c.classify(3221225477) == "retry"


def test_override_replaces_class_and_moves_code():
    c = Classifier({"success": [0, 3010]})
    assert c.classify(3010) == "success"
    assert c.classify(1707) == "failure"   # the success defaults were replaced
    assert c.classify(1641) == "hard_reboot"


def test_code_in_two_classes_is_rejected_naming_both():
    with pytest.raises(ExitCodeError, match=r"3010 is in two classes: exit_codes.success and exit_codes.soft_reboot"):
        Classifier({"success": [0, 3010], "soft_reboot": [3010]})


def test_non_integer_code_is_rejected():
    with pytest.raises(ExitCodeError, match="exit_codes.retry"):
        Classifier({"retry": ["busy"]})
    with pytest.raises(ExitCodeError, match="exit_codes.retry"):
        Classifier({"retry": [True]})


def test_unknown_class_is_rejected():
    with pytest.raises(ExitCodeError, match="exit_codes.reboot is not a class"):
        Classifier({"reboot": [1]})
