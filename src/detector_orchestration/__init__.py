"""orch: runs AI-safety detectors over content under tenant policies and hands their native
output to the mapper, which turns it into canonical findings."""
