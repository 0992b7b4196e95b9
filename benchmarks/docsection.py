"""One place for the benchmarks' write-back: a measured table replaces its marked section of a Markdown file.

Each benchmark keeps its figures between two HTML comments (``<!-- name:begin -->`` … ``<!-- name:end -->``,
or ``start``/``end`` in older sections), so a rerun replaces exactly its own table and leaves the text around it
— the reading of the figures — alone.
"""

from __future__ import annotations

from pathlib import Path


def replace_section(doc: Path, begin: str, end: str, body: str, heading: str) -> None:
    """Write ``body`` between the markers ``begin`` and ``end`` of ``doc`` (UTF-8), replacing what was there; where
    the markers are missing, append ``## heading`` and the marked body at the end (a missing file starts as
    ``# Benchmarks``). ``body`` is the content only, without the markers."""
    text = doc.read_text(encoding="utf-8") if doc.exists() else "# Benchmarks\n"
    block = f"{begin}\n{body.strip(chr(10))}\n{end}"
    if begin in text and end in text.split(begin, 1)[1]:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + f"\n\n## {heading}\n\n{block}\n"
    doc.write_text(text, encoding="utf-8")
