"""Paths given on a command line or to the API -> the audio files to read, and what was skipped and why.

Files are taken as given; folders are searched recursively for audio files (by extension, and by
content for files without one). Nothing given is dropped silently: an input that yields no audio
stays in the list, so reading it reports why, and entries a folder walk passes over are counted
in `Found.skipped` with the reason.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

AUDIO_EXTENSIONS = frozenset({
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".aifc", ".au", ".snd",
    ".w64", ".caf", ".m4a", ".m4b", ".mp4", ".aac", ".webm", ".mkv", ".mka", ".mov", ".wma", ".asf",
    ".amr", ".3gp", ".ac3", ".wv", ".spx",
})


# the first bytes of the containers we read (files without an extension are tried by these)
MAGIC = ((0, b"RIFF"), (0, b"RIFX"), (0, b"RF64"), (0, b"FORM"), (0, b"fLaC"), (0, b"OggS"), (0, b"ID3"),
         (0, b"\x1aE\xdf\xa3"), (4, b"ftyp"), (0, b"#!AMR"), (0, b".snd"), (0, b"caff"), (0, b"wvpk"),
         (0, b"riff\x2e\x91\xcf\x11"), (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"))


@dataclass
class Found:
    """What a set of paths holds: the files to read (in order), and what folder walks passed over."""

    files: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why)

    def summary(self) -> str:
        """One line: how many entries were skipped, by reason, with a few of each."""
        kinds: dict[str, list[str]] = {}
        for path, why in self.skipped:
            kinds.setdefault(why.split(" (")[0], []).append(path)
        parts = [f"{len(paths)} {kind} ({', '.join(paths[:3])}{', ...' if len(paths) > 3 else ''})"
                 for kind, paths in sorted(kinds.items(), key=lambda kv: -len(kv[1]))]
        return f"skipped {len(self.skipped)} entries in folders: {'; '.join(parts)}"


def scan_audio(paths: Iterable[str | Path]) -> Found:
    """The audio files of a run: files as given, folders searched recursively (following links
    to folders, each folder once) for AUDIO_EXTENSIONS in any case, and for files without an
    extension whose first bytes are an audio container's; each folder's finds sorted. What a
    walk passes over (other files, folders named like audio files with no audio in them,
    unreadable folders) is listed in `skipped` with the reason.

    Nothing given is dropped silently: an input that yields no audio file (missing, a dangling
    link, a link loop, a folder with no audio in it, whatever its name) stays in the list as
    given, so reading it raises AudioError with the reason (`path_problem` tells it up front),
    and a caller that reports per file and counts failures reports it too.
    """
    found = Found()
    for p in map(Path, paths):
        files = sorted(str(f) for f in _walk(p, found.skipped)) if str(p) != "-" and p.is_dir() else []
        found.files += files or [str(p)]
    return found


def find_audio(paths: Iterable[str | Path]) -> list[str]:
    """`scan_audio(paths).files`."""
    return scan_audio(paths).files


def looks_like_audio(path: str | Path) -> bool:
    """Whether a file's first bytes are those of an audio (or video) container we can read."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return False
    return any(head[at : at + len(magic)] == magic for at, magic in MAGIC) or (
        len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)  # an MPEG audio frame (MP3, ADTS AAC)


def path_problem(path: str | Path) -> str | None:
    """Why `path` cannot be read as an audio file, as far as the file system can tell (None: try it)."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symbolic link loop"
        if path.is_symlink():
            return f"dangling symbolic link (target not found: {os.readlink(path)})"
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return "file not found"
        return "permission denied" if e.errno == errno.EACCES else f"cannot read file ({e.strerror})"
    if stat.S_ISDIR(st.st_mode):
        return _directory_problem(path)
    if stat.S_ISFIFO(st.st_mode):
        return None  # a pipe, e.g. `<(curl ...)`: buffered by the reader
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file (a device or socket)"
    if st.st_size == 0:
        return "file is empty (0 bytes)"
    return None if os.access(path, os.R_OK) else "permission denied"


def _walk(root: Path, skipped: list[tuple[str, str]] | None = None) -> Iterator[Path]:
    """Files under `root` with an audio extension, or none and audio content (links included,
    dangling or not, so reading them reports them). Folders are entered once each, so a link loop
    cannot recurse forever. What is passed over goes to `skipped`, with the reason."""
    skip = skipped.append if skipped is not None else (lambda entry: None)
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            st = folder.stat()
            if (st.st_dev, st.st_ino) in seen:
                skip((str(folder), "a folder already searched (a link loop)"))
                continue
            seen.add((st.st_dev, st.st_ino))
            entries = sorted(os.scandir(folder), key=lambda e: e.name, reverse=True)
        except OSError as e:
            skip((str(folder), f"a folder that cannot be read ({e.strerror or e})"))
            continue
        for e in entries:
            ext = os.path.splitext(e.name)[1].lower()
            if _is_dir(e):
                if ext in AUDIO_EXTENSIONS and next(_walk(Path(e.path)), None) is None:
                    skip((e.path + "/", "a folder named like an audio file, with no audio in it"))
                stack.append(Path(e.path))
            elif ext in AUDIO_EXTENSIONS or not ext and looks_like_audio(e.path):
                yield Path(e.path)
            else:
                skip((e.path, f"not an audio file ({ext} files are not read)" if ext else
                      "not an audio file (no extension, and its first bytes are no audio container's)"))


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a link loop
        return False


def _directory_problem(path: Path) -> str:
    named = " named like an audio file" if path.suffix.lower() in AUDIO_EXTENSIONS else ""
    if not os.access(path, os.R_OK | os.X_OK):
        return f"is a directory{named}, and it cannot be read (permission denied)"
    if next(_walk(path), None) is None:
        return f"is a directory{named} with no audio files in it"
    return f"is a directory{named}, not an audio file"
