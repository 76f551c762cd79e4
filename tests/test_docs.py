"""The docs' generated tables match docs/results/*.json, and the docs point at files that exist.

Fast: no JAX, only the standard library and the generator (``docs/generate_tables.py``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GENERATOR = os.path.join(ROOT, "docs", "generate_tables.py")
sys.path.insert(0, os.path.join(ROOT, "docs"))

import generate_tables  # noqa: E402


def run_generator(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, GENERATOR, *args], capture_output=True, text=True,
                          timeout=60)


def read(path: str) -> str:
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


def test_generated_tables_are_up_to_date():
    result = run_generator("--check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_block_is_used_somewhere():
    text = "".join(read(p) for p in generate_tables.documents())
    unused = [name for name in generate_tables.BLOCKS if f"<!-- begin: {name} -->" not in text]
    assert not unused, f"blocks no document shows: {unused}"


@pytest.fixture
def copy_of_docs(tmp_path):
    """README.md and docs/ copied to a scratch root the generator can rewrite."""
    shutil.copy(os.path.join(ROOT, "README.md"), tmp_path / "README.md")
    shutil.copytree(os.path.join(ROOT, "docs"), tmp_path / "docs")
    return tmp_path


def test_check_fails_on_a_stale_block_and_the_generator_mends_it(copy_of_docs):
    results = copy_of_docs / "docs" / "results" / "temperflow_clayton_forward_kl.json"
    runs = json.loads(results.read_text())
    runs[0]["temperflow"]["positive_frac_max_error"] = 0.1234
    results.write_text(json.dumps(runs))

    stale = run_generator("--check", "--root", str(copy_of_docs))
    assert stale.returncode == 1
    assert "docs/temperflow.md: temperflow_clayton_forward_kl" in stale.stdout
    assert "README.md: temperflow_clayton_summary" in stale.stdout

    assert run_generator("--root", str(copy_of_docs)).returncode == 0
    assert run_generator("--check", "--root", str(copy_of_docs)).returncode == 0
    table = (copy_of_docs / "docs" / "temperflow.md").read_text()
    assert "| 8 | 245 | 17 | 0.1234 | 256/256 |" in table


def test_an_unknown_or_unclosed_block_is_an_error(copy_of_docs):
    readme = copy_of_docs / "README.md"
    readme.write_text(readme.read_text() + "\n<!-- begin: no_such_table -->\n"
                      "<!-- end: no_such_table -->\n")
    result = run_generator("--check", "--root", str(copy_of_docs))
    assert result.returncode == 2 and "no_such_table" in result.stderr


def test_number_formats():
    assert generate_tables.significant(0.16924) == "0.17"
    assert generate_tables.significant(41.494) == "41"
    assert generate_tables.significant(1.624) == "1.6"
    assert generate_tables.fixed(-0.00001, 4) == "0.0000"
    assert generate_tables.fixed(-0.0171, 3) == "-0.017"
    assert generate_tables.seconds(4839.56) == "4,840"
    assert generate_tables.percent(0.0787) == "7.9%"


def test_linked_files_exist():
    """Every docs/results, docs/*.md, experiments/ or gmjax/ path the docs name is in the tree."""
    missing = []
    for doc in generate_tables.documents():
        base = os.path.dirname(os.path.join(ROOT, doc))
        for path in re.findall(r"\(((?:results|docs)/[\w./-]+\.(?:png|md|json))[)#]",
                               read(doc)):
            if not os.path.exists(os.path.join(base, path)):
                missing.append(f"{doc}: {path}")
        for path in re.findall(r"`(results/[\w./-]+\.\w+)`", read(doc)):
            if not os.path.exists(os.path.join(base, path)):
                missing.append(f"{doc}: {path}")
        for path in re.findall(r"`((?:docs|experiments|gmjax|tests)/[\w./-]+\.(?:py|md|json|png|sh))`",
                               read(doc)):
            if not os.path.exists(os.path.join(ROOT, path)):
                missing.append(f"{doc}: {path}")
    assert not missing, missing


def test_docs_speak_as_a_reference_not_a_notebook():
    """No lab-notebook wording ("session", "the issue") in the README or the docs."""
    found = [f"{doc}: {line.strip()}" for doc in generate_tables.documents()
             for line in read(doc).splitlines()
             if re.search(r"session|the issue", line, re.IGNORECASE)]
    assert not found, found
