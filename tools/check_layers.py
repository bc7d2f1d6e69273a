#!/usr/bin/env python3
"""Checks that the framework's modules import only downwards (docs/architecture.md, "Layers").

Every top-level module of framework/src has a layer; a module may use `crate::<other>` only
for modules of a lower layer. Comments (lines starting with `//`) are not imports. Exits 1
naming each file, line and import that points sideways or upwards, and any module that has no
layer yet (a new module must be placed in LAYERS below and in the diagram).

    python3 tools/check_layers.py [--root framework/src]
"""
import argparse
import re
import sys
from pathlib import Path

# Lowest first; a module may import only modules of a lower layer.
LAYERS = [
    ["io", "rng", "suggest", "eval"],
    ["config", "ops"],
    ["model", "data"],
    ["method"],
    ["plugin"],
    ["engine"],
    ["run", "pretrain"],
]
RANK = {module: rank for rank, modules in enumerate(LAYERS) for module in modules}
IMPORT = re.compile(r"\bcrate::([a-z_]+)\b")


def module_of(path: Path, root: Path) -> str:
    first = path.relative_to(root).parts[0]
    return first[:-3] if first.endswith(".rs") else first


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path,
                        default=Path(__file__).resolve().parent.parent / "framework/src")
    root = parser.parse_args().root
    problems = []
    for path in sorted(root.rglob("*.rs")):
        if path.relative_to(root).parts[0] in ("lib.rs", "main.rs"):
            continue
        module = module_of(path, root)
        if module not in RANK:
            problems.append(f"{path}: module `{module}` has no layer in tools/check_layers.py")
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.lstrip().startswith("//"):
                continue
            for target in IMPORT.findall(line):
                if target == module or target not in RANK:
                    continue
                if RANK[target] >= RANK[module]:
                    problems.append(
                        f"{path}:{number}: `{module}` (layer {RANK[module]}) imports "
                        f"`crate::{target}` (layer {RANK[target]}): only lower layers may be used")
    for problem in problems:
        print(problem)
    if problems:
        return 1
    print(f"layers: {len(RANK)} modules of {root} import only downwards")
    return 0


if __name__ == "__main__":
    sys.exit(main())
