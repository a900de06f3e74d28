"""The code location: every Dagster object under defs/, with the resources they use."""

from pathlib import Path

import dagster as dg

from dotdyn_pipeline.resources import state_store_resource

defs = dg.Definitions.merge(
    dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
    dg.Definitions(resources={"state": state_store_resource()}),
)
