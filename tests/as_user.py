"""Run a command as an ordinary user, from a test that runs as root: `python -m tests.as_user USER -- CMD...`.

CI runs as root, yet the sandbox must be proven as the user who usually runs it. Dropping the uid is
easy; the catch is that this interpreter may live under a folder only root can enter (pyenv under
/root, 0700). So, in a private mount namespace of its own, each such folder is covered by an empty
tmpfs (0755) with the interpreter's folders bound back into it; then the process becomes USER (no
groups) and execs CMD. Nothing else of that folder is visible, and nothing changes on the host.
"""

from __future__ import annotations

import os
import pwd
import sys

from data_generation.common.sandbox import isolation as iso


def _closed_ancestor(path: str) -> str | None:
    """The top-most folder on the way to `path` that others cannot traverse."""
    parts = path.split("/")
    for i in range(2, len(parts) + 1):
        top = "/".join(parts[:i])
        if not os.stat(top).st_mode & 0o001:
            return top
    return None


def _expose_interpreter() -> None:
    wanted = {os.path.realpath(p) for p in [sys.base_prefix, sys.prefix, *sys.path] if p and os.path.isdir(p)}
    covers: dict[str, list[str]] = {}
    for path in sorted(wanted):
        top = _closed_ancestor(path)
        if top is not None and not any(path.startswith(p + "/") for p in covers.get(top, [])):
            covers.setdefault(top, []).append(path)
    if not covers:
        return
    iso.unshare(iso.CLONE_NEWNS, "NEWNS")
    iso.make_private()
    for top, paths in covers.items():
        fds = [(p, iso.open_path(p)) for p in paths]
        iso.tmpfs(top, 1 << 16, mode=0o755)
        for path, fd in fds:
            iso.bind(fd, iso.make_target("", path, True))
            os.close(fd)


def main(argv: list[str]) -> None:
    user, sep, command = argv[0], argv[1], argv[2:]
    if sep != "--" or not command:
        raise SystemExit("usage: python -m tests.as_user USER -- COMMAND...")
    if os.geteuid() != 0:
        raise SystemExit("tests.as_user needs root")
    entry = pwd.getpwnam(user)
    _expose_interpreter()
    os.setgroups([])
    os.setresgid(entry.pw_gid, entry.pw_gid, entry.pw_gid)
    os.setresuid(entry.pw_uid, entry.pw_uid, entry.pw_uid)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
