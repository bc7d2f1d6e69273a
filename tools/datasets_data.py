#!/usr/bin/env python3
"""Generate the data files that the `mvlpt-datasets` plugins embed, from the reference sources.

The dataset plugins hold no hand-typed class names, templates or metrics: everything a benchmark
defines is read here from the reference repositories and written as data:

* plugins/datasets/data/elevater.json: the 20 ELEVATER image-classification datasets, in the task
  order of MVLPT's `scripts/mvlpt/main_mt_elevater_cut.sh`. For each: its `vision_datasets.json`
  entry (type, format, root folder, index file and archives per split, labelmap, class count),
  the class names and zero-shot templates of `vision_benchmark/datasets/prompts.py`
  (`class_map`, `template_map`; a list entry contributes its first element, as MVLPT does), the
  metric MVLPT uses (`class_map_metric` in its vendored prompts.py) and the metric of the ELEVATER
  toolkit (`TEST.METRIC` of `vision_benchmark/resources/datasets/<name>.yaml`).
* plugins/datasets/data/coop.json: per CoOp dataset (Dassl registry name), the zero-shot template
  of CoOp's `trainers/zsclip.py` (`CUSTOM_TEMPLATES`) and the class-folder fixes its dataset
  modules apply when they build a split from folders (`IGNORED`, `NEW_CNAMES`, `TO_BE_IGNORED`).
* plugins/datasets/data/imagenet_classnames.txt: MVLPT's `scripts/classnames.txt` (folder id and
  CLIP class name per line, the file CoOp's ImageNet readers expect as `classnames.txt`).

Usage (each argument is a checkout or a bare clone of the repository named):

    /work/venv/bin/python tools/datasets_data.py --mvlpt MVLPT --elevater Elevater_Toolkit_IC \
        --coop CoOp

The repositories are sIncerass/MVLPT, Computer-Vision-in-the-Wild/Elevater_Toolkit_IC and
KaiyangZhou/CoOp on GitHub. The output is deterministic and records the commits it was read from.
"""

from __future__ import annotations

import argparse
import ast
import json
import pathlib
import re
import subprocess
import sys
import types

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "plugins" / "datasets" / "data"

# CoOp's dataset modules and the Dassl registry names they define.
COOP_MODULES = {
    "ImageNet": "imagenet",
    "Caltech101": "caltech101",
    "OxfordPets": "oxford_pets",
    "StanfordCars": "stanford_cars",
    "OxfordFlowers": "oxford_flowers",
    "Food101": "food101",
    "FGVCAircraft": "fgvc_aircraft",
    "SUN397": "sun397",
    "DescribableTextures": "dtd",
    "EuroSAT": "eurosat",
    "UCF101": "ucf101",
    "ImageNetV2": "imagenetv2",
    "ImageNetSketch": "imagenet_sketch",
    "ImageNetA": "imagenet_a",
    "ImageNetR": "imagenet_r",
}


class Repo:
    """Reads files at HEAD of a checkout or a bare clone."""

    def __init__(self, path: str):
        self.path = pathlib.Path(path)
        bare = not (self.path / ".git").exists() and (self.path / "HEAD").exists()
        self.git = ["git", "--git-dir", str(self.path)] if bare else ["git", "-C", str(self.path)]
        self.bare = bare

    def commit(self) -> str:
        return subprocess.run(self.git + ["rev-parse", "HEAD"], check=True, capture_output=True,
                              text=True).stdout.strip()

    def read(self, relative: str) -> str:
        if not self.bare:
            return (self.path / relative).read_text(encoding="utf-8")
        return subprocess.run(self.git + ["show", f"HEAD:{relative}"], check=True,
                              capture_output=True).stdout.decode("utf-8")


def load_module(name: str, text: str) -> types.ModuleType:
    """Executes a pure-data Python module (prompts.py) and returns it."""
    module = types.ModuleType(name)
    exec(compile(text, name, "exec"), module.__dict__)  # noqa: S102 (reference data module)
    return module


def literal_assignments(text: str) -> dict:
    """Module-level `NAME = <literal>` assignments of a Python source."""
    found = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                found[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return found


def first_name(entry) -> str:
    return entry if isinstance(entry, str) else entry[0]


def elevater_metric(yaml_text: str) -> str:
    match = re.search(r"^\s*METRIC:\s*'([^']+)'", yaml_text, re.MULTILINE)
    if not match:
        sys.exit("no TEST.METRIC in an ELEVATER dataset yaml")
    return match.group(1)


def elevater_data(mvlpt: Repo, elevater: Repo) -> dict:
    prompts = load_module("prompts", mvlpt.read("trainers/vision_benchmark/datasets/prompts.py"))
    registry = json.loads(mvlpt.read("trainers/vision_benchmark/resources/datasets/vision_datasets.json"))
    by_name = {entry["name"]: entry for entry in registry}
    script = mvlpt.read("scripts/mvlpt/main_mt_elevater_cut.sh")
    order = re.search(r'^DATASET="([^"]+)"', script, re.MULTILINE).group(1).split(",")

    yaml_dir = "vision_benchmark/resources/datasets"
    listing = subprocess.run(elevater.git + ["ls-tree", "--name-only", f"HEAD:{yaml_dir}"] if elevater.bare
                             else ["ls", str(elevater.path / yaml_dir)],
                             check=True, capture_output=True, text=True).stdout.split()
    official = {}
    for file_name in listing:
        if file_name.endswith(".yaml"):
            text = elevater.read(f"{yaml_dir}/{file_name}")
            name = re.search(r"^\s*DATASET:\s*'([^']+)'", text, re.MULTILINE).group(1)
            official[name] = elevater_metric(text)

    datasets = []
    for name in order:
        entry = by_name[name]
        splits = {}
        for usage in ("train", "val", "test"):
            if usage in entry:
                splits[usage] = {
                    "index": entry[usage]["index_path"],
                    "archives": entry[usage].get("files_for_local_usage", []),
                    "num_images": entry[usage].get("num_images"),
                }
        classnames = [first_name(c) for c in prompts.class_map[name]]
        if len(classnames) != entry["num_classes"]:
            sys.exit(f"{name}: {len(classnames)} class names for {entry['num_classes']} classes")
        datasets.append({
            "name": name,
            "type": entry["type"],
            "format": entry.get("format", "iris"),
            "root_folder": entry["root_folder"],
            "splits": splits,
            "labelmap": entry.get("labelmap"),
            "num_classes": entry["num_classes"],
            "classnames": classnames,
            "templates": list(prompts.template_map[name]),
            "metric": prompts.class_map_metric[name],
            "elevater_metric": official[name],
        })
    return {
        "generated_by": "tools/datasets_data.py",
        "sources": {
            "sIncerass/MVLPT": mvlpt.commit(),
            "Computer-Vision-in-the-Wild/Elevater_Toolkit_IC": elevater.commit(),
        },
        "datasets": datasets,
    }


def coop_data(coop: Repo) -> dict:
    templates = literal_assignments(coop.read("trainers/zsclip.py"))["CUSTOM_TEMPLATES"]
    datasets = {}
    for registry_name, module in COOP_MODULES.items():
        constants = literal_assignments(coop.read(f"datasets/{module}.py"))
        datasets[registry_name] = {
            "template": templates[registry_name],
            "ignored_folders": constants.get("IGNORED", constants.get("TO_BE_IGNORED", [])),
            "renamed_folders": constants.get("NEW_CNAMES", {}),
        }
    return {
        "generated_by": "tools/datasets_data.py",
        "sources": {"KaiyangZhou/CoOp": coop.commit()},
        "datasets": datasets,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mvlpt", required=True, help="sIncerass/MVLPT checkout or bare clone")
    parser.add_argument("--elevater", required=True, help="Elevater_Toolkit_IC checkout or bare clone")
    parser.add_argument("--coop", required=True, help="KaiyangZhou/CoOp checkout or bare clone")
    args = parser.parse_args()
    mvlpt, elevater, coop = Repo(args.mvlpt), Repo(args.elevater), Repo(args.coop)

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for file_name, data in (("elevater.json", elevater_data(mvlpt, elevater)), ("coop.json", coop_data(coop))):
        text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
        (OUT_DIR / file_name).write_text(text, encoding="utf-8")
    classnames = mvlpt.read("scripts/classnames.txt")
    (OUT_DIR / "imagenet_classnames.txt").write_text(classnames, encoding="utf-8")
    print(f"wrote {OUT_DIR}/elevater.json, coop.json, imagenet_classnames.txt")


if __name__ == "__main__":
    main()
