"""Execute the notebooks in place, so that they are committed with their outputs (tables, plots)
where people read them. On the real data and the runs under outputs/:

    HYBRIDREC_DATA_DIR=/path/to/folder .venv/bin/python scripts/notebooks.py
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        book = nbformat.read(path, as_version=4)
        NotebookClient(
            book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
        ).execute()
        nbformat.write(book, path)
        print(f"executed {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
