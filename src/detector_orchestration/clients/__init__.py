"""Clients of remote detectors; each implements the Detector contract."""
