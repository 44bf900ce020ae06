"""pagereel's flows, their command lines and what they share (settings, runners, cache, metrics)."""

from flows.logs import route_to_prefect

# Before any flow module loads Prefect, so pagereel's warnings reach the Prefect UI (see flows.logs).
route_to_prefect()
