"""The state store's schema, brought up to date by materializing it."""

import dagster as dg

from dotdyn_pipeline.resources import StateStoreResource


@dg.asset(group_name="state", kinds={"sql"}, description="The middleware's own tables (sql/), migrated.")
def state_store(context: dg.AssetExecutionContext, state: StateStoreResource) -> dg.MaterializeResult:
    with state.open() as store:
        versions = store.schema_versions()
    context.log.info("state store on %s at schema version %s", state.backend_name, versions[-1])
    return dg.MaterializeResult(metadata={
        "backend": state.backend_name,
        "schema_version": dg.MetadataValue.int(versions[-1]),
        "migrations_applied": dg.MetadataValue.int(len(versions)),
    })
