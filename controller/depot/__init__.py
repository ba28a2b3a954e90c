"""Depot's controller: a software repository, policies and multi-step deployments with states
and per-host status, run as playbooks of the depot.software collection through ansible-runner."""

__version__ = "0.1.0"
