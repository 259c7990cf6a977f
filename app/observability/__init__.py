"""Metrics, traces and event logs: what operators see of the running service."""
