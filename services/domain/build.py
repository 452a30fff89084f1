"""Compile the rule modules with mypyc, in place: `python -m services.domain.build`.

`make install` runs it (again whenever one of the sources changed) and so does the
container image. Without a C compiler, or if mypyc fails, it says so, removes what it had
built and exits 0: the same .py sources then run as pure Python, slower, deciding the same.
A small script rather than a setup.py with mypycify: `pip install -e` stays as it was (no
isolated build environment that must fetch mypy, no failed install without a compiler),
and the Makefile can rebuild only when the sources change.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time

from services.domain.native import COMPILED, HERE, MANIFEST, _extension, source_digest

ROOT = HERE.parent.parent
BUILD_DIR = ROOT / "build" / "mypyc"
# The shared library of the group goes next to the modules: services/domain/_native__mypyc.
GROUP = "services.domain._native"


def remove_built() -> None:
    """Every extension in the package, also of a module no longer compiled."""
    for name in (source.stem for source in HERE.glob("*.py")):
        while (extension := _extension(name)) is not None:
            extension.unlink()
    for library in HERE.glob("_native__mypyc*"):
        library.unlink()
    MANIFEST.unlink(missing_ok=True)


def build() -> bool:
    from mypyc.build import mypycify
    from setuptools import Distribution  # type: ignore[import-untyped]

    sources = [f"services/domain/{name}.py" for name in COMPILED]
    extensions = mypycify(sources, group_name=GROUP, target_dir=str(BUILD_DIR), opt_level="3")
    # A bare Distribution: setup() would read (and validate) the project's pyproject.toml.
    distribution = Distribution({"name": "o2c-matcher-rules", "ext_modules": extensions})
    command = distribution.get_command_obj("build_ext")
    command.inplace = True
    command.build_temp = str(BUILD_DIR)
    distribution.run_command("build_ext")
    return all(_extension(name) is not None for name in COMPILED)


def main() -> int:
    os.chdir(ROOT)
    remove_built()
    if shutil.which(os.environ.get("CC", "cc")) is None and shutil.which("gcc") is None:
        print(
            "warning: no C compiler (cc, gcc): the rule modules run as pure Python", file=sys.stderr
        )
        return 0
    started = time.monotonic()
    print(f"compiling {len(COMPILED)} rule modules with mypyc (about a minute)…", flush=True)
    try:
        built = build()
    except (Exception, SystemExit) as failure:  # setuptools reports a compiler error by exit
        built = False
        print(f"warning: mypyc build failed: {failure}", file=sys.stderr)
    if not built:
        remove_built()
        print("warning: the rule modules run as pure Python", file=sys.stderr)
        return 0
    MANIFEST.write_text(json.dumps({name: source_digest(name) for name in COMPILED}, indent=1))
    print(f"compiled {len(COMPILED)} rule modules in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
