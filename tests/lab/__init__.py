"""The Depot test lab: real Linux hosts in namespaces on this machine. See README.md."""

from .lab import HOST_INSTALLERS, INSTALLERS, Host, Lab, LabError

__all__ = ["HOST_INSTALLERS", "INSTALLERS", "Host", "Lab", "LabError"]
