"""The agent page's in-browser verifier (web/agent/verify.js), run by node against the
RFC 6962 vectors and against notes and proofs that the Python ledger code makes here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from live.audit.checkpoint import CheckpointSigner
from live.audit.merkle import MerkleTree, leaf_hash
from live.audit.proofs import b64

ROOT = Path(__file__).resolve().parents[2]


def vectors() -> dict[str, object]:
    signer = CheckpointSigner.generate("live.ledger/test")
    other = CheckpointSigner.generate("live.ledger/test")
    witness = CheckpointSigner.generate("witness.example")
    tree = MerkleTree(leaf_hash(f"entry {i}".encode()) for i in range(41))
    rewritten = MerkleTree(leaf_hash(f"entry {i}".encode()) for i in range(41) if i != 5)
    rewritten.extend(leaf_hash(f"more {i}".encode()) for i in range(3))
    note = signer.sign("live.ledger/test", tree.size, tree.root(), ["time 1772442000"])
    forged = note.rsplit("\n\n", 1)[0] + "\n\n" + other.sign_note(note.split("\n\n")[0] + "\n").split("\n\n")[1]
    forged = forged.replace(other.name, signer.name, 1)
    cosigned = note + witness.sign_note(note.split("\n\n")[0] + "\n").split("\n\n")[1]
    proofs = []
    for old in (1, 2, 3, 7, 8, 13, 16, 17, 40):
        for new in (old, old + 1, 20, 32, 41):
            if new < old:
                continue
            hashes = tree.consistency_proof(old, new)
            base = {"old_size": old, "new_size": new, "hashes": [b64(h) for h in hashes]}
            proofs.append({**base, "old_root": b64(tree.root(old)), "new_root": b64(tree.root(new)), "ok": True})
            if old >= 6 and new > old:  # the same sizes in a log rewritten at entry 5
                proofs.append(
                    {**base, "old_root": b64(tree.root(old)), "new_root": b64(rewritten.root(new)), "ok": False}
                )
    return {
        "origin": "live.ledger/test",
        "size": tree.size,
        "root": b64(tree.root()),
        "note": note,
        "verifier_key": signer.verifier_key(),
        "other_key": other.verifier_key(),
        "forged_note": forged,
        "cosigned_note": cosigned,
        "proofs": proofs,
    }


def test_the_browser_verifier_under_node(tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node is not None, "node is needed (deploy/run-tests.sh installs it)"
    file = tmp_path / "vectors.json"
    file.write_text(json.dumps(vectors()), encoding="utf-8")
    done = subprocess.run(
        [node, "--test", str(ROOT / "tests/js/verify.test.mjs")],
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
        env={**os.environ, "LIVE_JS_VECTORS": str(file)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "# pass 3" in done.stdout and "# skipped 0" in done.stdout, done.stdout
