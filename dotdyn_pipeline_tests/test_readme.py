"""The README's documented tables stay true to what the code serves."""

from dotdyn_pipeline.sandbox.dataverse.schema import markdown
from dotdyn_pipeline.settings import PROJECT_ROOT


def test_readme_documents_every_esc_table_as_served():
    assert markdown().strip() in (PROJECT_ROOT / "README.md").read_text()
