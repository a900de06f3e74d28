"""The documentation stays true: the solution's table reference is what the code serves, and no link is dead."""

import re
from pathlib import Path

from dotdyn_pipeline.settings import PROJECT_ROOT
from dotdyn_pipeline.solution.schema import markdown

DOCS = PROJECT_ROOT / "docs"
#: A Markdown link's target: `[text](target)`, the target up to a space or the closing parenthesis.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)[^)]*\)")
FENCED_BLOCK = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def relative_links(document: Path) -> list[str]:
    """The targets of `document`'s links to files of the repository (not web addresses, not anchors in itself),
    outside code."""
    text = INLINE_CODE.sub("", FENCED_BLOCK.sub("", document.read_text()))
    targets = [target.split("#", 1)[0] for target in LINK.findall(text)]
    return [target for target in targets if target and not re.match(r"[a-z][a-z0-9+.-]*:", target)]


def test_solution_doc_holds_the_generated_table_reference_exactly():
    text = (DOCS / "solution.md").read_text()
    reference = text[text.index("\n#### ") + 1:]  # from the first table's heading to the end
    assert reference.strip() == markdown().strip()


def test_every_relative_link_in_the_readme_and_docs_points_to_a_file():
    documents = [PROJECT_ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    links = {(document, target) for document in documents for target in relative_links(document)}
    dead = sorted(f"{document.relative_to(PROJECT_ROOT)} -> {target}" for document, target in links
                  if not (document.parent / target).is_file())
    assert links, "no relative link found: the link pattern no longer matches the documents"
    assert not dead, "links to files that do not exist:\n" + "\n".join(dead)
