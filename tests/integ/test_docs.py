"""The documentation names every config key the code reads, with its default."""

import re

import helpers as h


def _keys():
    src = (h.REPO / "common" / "base" / "config.c").read_text()
    keys = re.findall(r"^\s*K\((\w+),", src, re.M)
    assert len(keys) >= 20, keys
    return keys


def test_readme_lists_every_key():
    readme = (h.REPO / "README.md").read_text()
    readme = readme[readme.index("\n## Configuration"):]
    readme = readme[:readme.index("\n## ", 1)]
    rows = set(re.findall(r"^\| `(\w+)` \|", readme, re.M))
    assert set(_keys()) <= rows, sorted(set(_keys()) - rows)
    assert rows <= set(_keys()), sorted(rows - set(_keys()))


def test_sample_config_lists_every_key():
    sample = (h.REPO / "postern.conf.sample").read_text()
    present = set(re.findall(r"^[#;]?\s*(\w+)\s*=", sample, re.M))
    assert set(_keys()) <= present, sorted(set(_keys()) - present)
