"""An output folder that a run rewrites without leaving the last run's files behind.

A weekly run re-written into the same folder (a week run again, a manual run into ``out/``) used
to overwrite the files it wrote again and leave the others: chips, swipe views and field sheets of
detections since withdrawn, a region's field pack from a week in which that region had
detections.  A folder written at ``public`` after a ``restricted`` run then still held the
restricted run's chips and field sheets, exact places under a public label; and the field pack's
CSV a ranger had filled in with verdicts was overwritten without a word.

Each writer now records what it wrote, with a SHA-256 of each file, in the folder's manifest
(``.sitewatch-outputs.json``).  Before the next write into the folder, the files of that record
that are unchanged are deleted; a file changed since it was written (verdicts filled into the
field pack's CSV) is kept, renamed ``<name>.edited-<UTC time><suffix>``, and named to the
operator.  A write at a lower access level than a kept copy (or than a folder written before
manifests existed) is refused: the copy would carry its exact places into the lower level's
folder.  Files the writer did not write (the demo's database, the operator's own notes) are never
touched.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from maps.access import LEVELS, rank
from sitewatch.errors import SitewatchError

MANIFEST = ".sitewatch-outputs.json"


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_size


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class OutputFolder:
    """``owned``: the top-level names (files or folders) in ``root`` that this writer writes;
    ``level_file``: the one of them (JSON) whose ``access_level`` says at what level a folder
    written before manifests existed was written."""

    root: Path
    owned: tuple[str, ...]
    access: str
    level_file: str | None = None
    kept: list[Path] = field(default_factory=list)
    """Files changed since the last run wrote them, kept under a new name by :meth:`begin`."""
    _before: dict[Path, tuple[int, int]] = field(default_factory=dict, repr=False)
    _kept_levels: dict[str, str] = field(default_factory=dict, repr=False)

    def _files(self) -> set[Path]:
        out: set[Path] = set()
        for name in self.owned:
            p = self.root / name
            if p.is_file():
                out.add(p)
            elif p.is_dir():
                out.update(f for f in p.rglob("*") if f.is_file())
        return out

    def _manifest(self) -> dict:
        path = self.root / MANIFEST
        if not path.is_file():
            return {}
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SitewatchError(f"{path}: unreadable ({exc}); it records what the last run wrote here, so that "
                                 "run's files cannot be told from others: remove the folder's outputs by hand") from None
        return doc if isinstance(doc, dict) else {}

    def _inside(self, rel: str) -> Path | None:
        """The recorded file ``rel``, if it is still there and inside the folder."""
        f = self.root / rel
        return f if f.is_file() and f.resolve().is_relative_to(self.root.resolve()) else None

    def _edited(self, old: dict) -> set[str]:
        """The last run's files changed since it wrote them."""
        return {rel for rel, h in old.get("files", {}).items()
                if isinstance(h, str) and (f := self._inside(rel)) is not None and _sha(f) != h}

    def check(self) -> None:
        """Refuse (before any work) a write that would leave more sensitive files in the folder."""
        old = self._manifest()
        self._check(old, self._edited(old))

    def _check(self, old: dict, edited: set[str]) -> None:
        rank(self.access)
        if not old:
            legacy = self.root / (self.level_file or "")  # written before manifests: its level is in it
            if self.level_file and legacy.is_file():
                try:
                    level = json.loads(legacy.read_text(encoding="utf-8")).get("access_level", "secret")
                except (OSError, ValueError, AttributeError):
                    level = "secret"
                if level in LEVELS and rank(level) > rank(self.access):
                    raise SitewatchError(
                        f"{self.root} holds outputs written at {level!r} (by a sitewatch without a record of its "
                        f"files); writing {self.access!r} outputs there would leave them in a folder labelled "
                        f"{self.access!r}: choose another folder, or empty this one"
                    )
            return
        above = [rel for rel, level in old.get("kept", {}).items()
                 if self._inside(rel) is not None and level in LEVELS and rank(level) > rank(self.access)]
        if old.get("access") in LEVELS and rank(old["access"]) > rank(self.access):
            above += edited
        if above:
            raise SitewatchError(
                f"{self.root}: {', '.join(sorted(above))} (edited after a run at a higher access level than "
                f"{self.access!r}) would stay in a folder of {self.access!r} outputs: import or move "
                f"{'it' if len(above) == 1 else 'them'} first, or write these outputs to another folder"
            )

    def begin(self) -> list[Path]:
        """Delete the last run's unchanged files, keep changed ones under a new name; returns those."""
        old = self._manifest()
        edited = self._edited(old)
        self._check(old, edited)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self._kept_levels = {rel: level for rel, level in old.get("kept", {}).items() if self._inside(rel) is not None}
        for rel in old.get("files", {}):
            f = self._inside(rel)
            if f is None:
                continue
            if rel not in edited:
                f.unlink()
            else:
                copy = f.with_name(f"{f.stem}.edited-{stamp}{f.suffix}")
                f.rename(copy)
                self.kept.append(copy)
                self._kept_levels[copy.relative_to(self.root).as_posix()] = old.get("access", "secret")
        for name in self.owned:  # folders the deletions emptied
            top = self.root / name
            if top.is_dir():
                for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                    if not any(d.iterdir()):
                        d.rmdir()
        self._before = {f: _stamp(f) for f in self._files()}
        return self.kept

    def finish(self) -> None:
        """Record what this run wrote: every file in the owned names that is new or rewritten."""
        written = sorted(f for f in self._files() if self._before.get(f) != _stamp(f))
        doc = {"access": self.access, "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "files": {f.relative_to(self.root).as_posix(): _sha(f) for f in written},
               "kept": self._kept_levels}
        (self.root / MANIFEST).write_text(json.dumps(doc, indent=1), encoding="utf-8")
