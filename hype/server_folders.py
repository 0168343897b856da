"""Which folders on the server a researcher may import images from: only those inside roots the
operator configured (HYPE_IMPORT_ROOTS; none by default).

The dashboard is used by several researchers, so a free "folder on the server" field would read any
directory the server can (another researcher's stored images, /etc, /proc). Errors never echo the
path asked for or a path found: whether a folder outside the roots exists is nobody's business.
No Flask, no DB.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

TURNED_OFF = ("Importing from folders on the server is turned off on this server: upload a zip instead. "
              "(The operator can allow folders with HYPE_IMPORT_ROOTS.)")
NOT_ALLOWED = ("There is no such folder among the folders this server allows imports from. "
               "Check the name, or upload a zip instead.")


class ServerFolderError(ValueError):
    """A folder the researcher may not import from; the message is written for them."""


def parse_roots(text: str) -> tuple[Path, ...]:
    """HYPE_IMPORT_ROOTS: absolute folders separated by the OS path separator (':' on Linux)."""
    roots = []
    for part in text.split(os.pathsep):
        part = part.strip()
        if not part:
            continue
        if not os.path.isabs(part):
            raise ValueError(f"HYPE_IMPORT_ROOTS entries must be absolute paths, not {part!r}")
        roots.append(Path(os.path.realpath(part)))
    return tuple(roots)


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def resolve_server_folder(requested: str, roots: Sequence[Path], forbidden: Sequence[Path] = ()) -> Path:
    """The real folder ``requested`` names, if it lies inside one of ``roots`` (after following
    symbolic links) and outside every ``forbidden`` folder (the platform's own data). A relative
    name is looked up in each root in turn."""
    if not roots:
        raise ServerFolderError(TURNED_OFF)
    requested = (requested or "").strip()
    if not requested or "\x00" in requested:
        raise ServerFolderError(NOT_ALLOWED)
    candidates = [Path(requested)] if os.path.isabs(requested) else [root / requested for root in roots]
    resolved_forbidden = [Path(os.path.realpath(f)) for f in forbidden]
    for candidate in candidates:
        real = Path(os.path.realpath(candidate))
        if not any(_inside(real, root) for root in roots):
            continue
        if any(_inside(real, f) or _inside(f, real) for f in resolved_forbidden):
            continue
        if real.is_dir():
            return real
    raise ServerFolderError(NOT_ALLOWED)
