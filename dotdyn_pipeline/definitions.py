"""The code location: every Dagster object under defs/, with the resources they use."""

from pathlib import Path

import dagster as dg

from dotdyn_pipeline.resources import resources


def build_definitions() -> dg.Definitions:
    """The definitions, with resources wired to the environment as it is now."""
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(resources=resources()),
    )


def audience_sync_job() -> dg.JobDefinition:
    """The audience job, rebuilt from the environment as it is now: a target for `dg.reconstructable`, so that
    `dg.execute_job` runs it with its own executor, a process per step."""
    return build_definitions().resolve_job_def("audience_sync")


defs = build_definitions()
