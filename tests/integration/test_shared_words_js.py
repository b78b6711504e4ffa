"""The pages' shared words: one table of purpose labels (web/shared/purposes.js) that the
console, the agent page and the audit page all use, and that says what the server's table
(live/l10n/labels.py: notices, exports, reports) says. (The duration rule is checked against the
server's in tests/integration/test_duration_rule_js.py.)"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from live.l10n.labels import LABELS

ROOT = Path(__file__).resolve().parents[2]


def node_json(script: str) -> object:
    node = shutil.which("node")
    assert node is not None, "node is needed (deploy/run-tests.sh installs it)"
    out = subprocess.run(
        [node, "--input-type=module", "-e", script], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return json.loads(out)


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


def test_the_server_names_purposes_as_the_pages_do() -> None:
    shared = (ROOT / "web/shared/purposes.js").as_uri()
    got = node_json(f"import {{ PURPOSES }} from '{shared}'; console.log(JSON.stringify(PURPOSES))")
    server = {
        lang: {k: v for k, v in words.items() if k.startswith("purpose.")} for lang, words in LABELS.items()
    }
    assert got == server
