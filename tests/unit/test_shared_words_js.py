"""The pages' shared words: one duration rule (web/shared/duration.js) and one table of
purpose labels (web/shared/purposes.js) that the console, the agent page and the audit page
all use."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def node_json(script: str) -> object:
    node = shutil.which("node")
    assert node is not None, "node is needed (deploy/run-tests.sh installs it)"
    out = subprocess.run(
        [node, "--input-type=module", "-e", script], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return json.loads(out)


def test_durations_round_to_whole_seconds_in_english_and_german() -> None:
    module = (ROOT / "web/shared/duration.js").as_uri()
    cases = [3725, 303, 42, 41.5, 59.6, 0, -3, 7200]
    got = node_json(
        f"import {{ formatDuration }} from '{module}';"
        f"const c = {json.dumps(cases)};"
        "console.log(JSON.stringify({en: c.map((s) => formatDuration(s, 'en')), de: c.map((s) => formatDuration(s, 'de'))}))"
    )
    assert got == {
        "en": ["1 h 02 min", "5 min 03 s", "42 s", "42 s", "1 min 00 s", "0 s", "0 s", "2 h 00 min"],
        "de": ["1 Std. 02 Min.", "5 Min. 03 Sek.", "42 Sek.", "42 Sek.", "1 Min. 00 Sek.", "0 Sek.", "0 Sek.", "2 Std. 00 Min."],
    }


def test_every_page_names_purposes_with_the_shared_table() -> None:
    shared = (ROOT / "web/shared/purposes.js").as_uri()
    pages = {name: (ROOT / f"web/{name}/strings.js").as_uri() for name in ("console", "agent", "audit")}
    imports = "".join(f"import {{ STRINGS as {n}Strings }} from '{uri}';" for n, uri in pages.items())
    listed = ", ".join(f"{n}: {n}Strings" for n in pages)
    got = node_json(
        f"import {{ PURPOSES }} from '{shared}';{imports}"
        f"console.log(JSON.stringify({{shared: PURPOSES, pages: {{ {listed} }} }}))"
    )
    assert isinstance(got, dict)
    shared_table = got["shared"]
    assert shared_table["en"]["purpose.quality"] == "Quality assurance"
    for name, strings in got["pages"].items():
        for lang in ("en", "de"):
            words = {k: v for k, v in strings[lang].items() if k.startswith("purpose.")}
            assert words == shared_table[lang], (name, lang)
