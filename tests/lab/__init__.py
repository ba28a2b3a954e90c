"""The Depot test lab: real Linux hosts in namespaces on this machine. See README.md."""

from .lab import INSTALLERS, Host, Lab, LabError

__all__ = ["INSTALLERS", "Host", "Lab", "LabError"]
