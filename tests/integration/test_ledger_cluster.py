"""Several nodes appending to one PostgreSQL log at once: one tree, no fork, verify passes."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time
from pathlib import Path

from live.audit import MerkleLedger, open_ledger
from live.audit.checkpoint import verify_note
from tests import conftest_pg
from tests.support.wait import wait_for

postgres_server = conftest_pg.postgres_server
postgres_db_url = conftest_pg.postgres_db_url

ORIGIN = "cluster.example/ledger"


def node(url: str, data_dir: Path, **options: object) -> MerkleLedger:
    return open_ledger(
        url,
        data_dir / "ledger.sqlite3",
        origin=ORIGIN,
        checkpoint_every=7,
        checkpoint_interval_s=0,
        **options,  # type: ignore[arg-type]
    )


async def append_many(ledger: MerkleLedger, name: str, n: int) -> list[int]:
    seqs = []
    for i in range(n):
        seqs.append(
            await ledger.append(
                "listen.started",
                actor=f"sup-{name}",
                at=time.time(),
                session_id=f"ls_{name}_{i}",
                call_id=f"CA_{name}_{i}",
                agent_id="agent-1",
                user_id=f"sup-{name}",
                display_name=f"Supervisor {name}",
                purpose="quality",
                legs=["agent"],
                node_id=f"node-{name}",
                started_at=time.time(),
            )
        )
    return seqs


async def test_two_nodes_append_concurrently_to_one_tree(
    postgres_db_url: str, tmp_path: Path
) -> None:
    a = node(postgres_db_url, tmp_path / "a")
    b = node(postgres_db_url, tmp_path / "b")
    await asyncio.gather(a.open(), b.open())
    try:
        trusted = [a.verifier_key(), b.verifier_key()]
        assert trusted[0] != trusted[1]  # each node has its own key here
        seqs_a, seqs_b, _ = await asyncio.gather(
            append_many(a, "a", 60),
            append_many(b, "b", 60),
            asyncio.gather(*(a.checkpoint() for _ in range(5))),
        )
        assert sorted(seqs_a + seqs_b) == list(range(120))
        assert not set(seqs_a) & set(seqs_b)
        # Each node's tree caught up with the other's entries.
        head = await a.head()
        assert await b.head() == head and head[0] == 120
        # A proof from one node verifies against a checkpoint signed by the other.
        checkpoint = verify_note(await b.checkpoint(), b.verifier_key(), origin=ORIGIN)
        (await a.inclusion_proof(seqs_b[-1], checkpoint.size)).verify(checkpoint.root)
        for ledger in (a, b):
            report = await ledger.verify(trusted_keys=trusted)
            assert report.ok, report.problems
            assert report.entries == 120
        # Without the other node's key, its entries are not trusted.
        assert not (await a.verify()).ok
    finally:
        await asyncio.gather(a.aclose(), b.aclose())


WORKER = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from live.audit import open_ledger

    async def main(url, data_dir, name, n, go):
        ledger = open_ledger(url, Path(data_dir) / "ledger.sqlite3", origin=ORIGIN,
                             checkpoint_every=5, checkpoint_interval_s=0.05)
        await ledger.open()
        Path(f"{go}.{name}").touch()  # opened: tell the test
        while not Path(go).exists():  # bounded by the test's wait for this process
            await asyncio.sleep(0.01)
        for i in range(int(n)):
            await ledger.append("notice.delivered", actor="system", at=time.time(),
                                notice_id=f"{name}-{i}", agent_id="agent-1", mode="after_call")
        await ledger.aclose()

    asyncio.run(main(*sys.argv[1:]))
    """
).replace("ORIGIN", repr(ORIGIN))


async def test_two_processes_append_concurrently_to_one_tree(
    postgres_db_url: str, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"  # both processes use the same key file, as a cluster should
    go = tmp_path / "go"
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WORKER,
            postgres_db_url,
            str(shared),
            name,
            "80",
            str(go),
            cwd=Path(__file__).resolve().parents[2],
        )
        for name in ("p1", "p2")
    ]
    # Both open at once (and race to create the key); then both append at once.
    def opened() -> bool:
        assert all(w.returncode is None for w in workers), "a process exited before appending"
        return all(Path(f"{go}.{name}").exists() for name in ("p1", "p2"))

    await wait_for(opened, 60, "both processes to open")
    go.touch()
    for worker in workers:
        assert await asyncio.wait_for(worker.wait(), 120) == 0
    ledger = node(postgres_db_url, shared)
    await ledger.open()
    try:
        entries = await ledger.entries()
        assert [e.seq for e in entries] == list(range(160))
        names = sorted(e.fields["notice_id"] for e in entries)
        assert names == sorted([f"p1-{i}" for i in range(80)] + [f"p2-{i}" for i in range(80)])
        report = await ledger.verify()
        assert report.ok, report.problems
        assert report.checkpoints >= 32  # every 5 entries, plus the timers
    finally:
        await ledger.aclose()
