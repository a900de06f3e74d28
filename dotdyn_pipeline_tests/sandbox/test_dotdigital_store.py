"""The account store's write-ahead log stays bounded while writers commit in turn, as the import workers do."""

from __future__ import annotations

import random
import threading
from pathlib import Path

from dotdyn_pipeline.sandbox.dotdigital.store import AccountStore

MB = 1024 * 1024
PEOPLE = 50_000


def _peak_log(store: AccountStore, rounds: int = 30) -> int:
    """Two threads update random contacts in turn, 3,000 per transaction; the largest log size seen after a commit."""
    with store.write() as conn:
        conn.executemany("INSERT INTO contacts (email, data, created, modified, import_seq) "
                         "VALUES (?, '{}', 'x', 'x', 0)", [(f"p{i}@example.com",) for i in range(PEOPLE)])
    log, sizes = Path(f"{store.path}-wal"), []

    def work(seed: int) -> None:
        pick = random.Random(seed)
        for _ in range(rounds):
            with store.write() as conn:
                conn.executemany("UPDATE contacts SET data = ? WHERE id = ?",
                                 [(f'{{"score": {pick.random()}}}', pick.randrange(1, PEOPLE)) for _ in range(3_000)])
            sizes.append(log.stat().st_size)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.scalar("SELECT COUNT(*) FROM contacts") == PEOPLE
    return max(sizes)


def test_writers_committing_in_turn_keep_the_log_near_its_limit(tmp_path: Path) -> None:
    unbounded = _peak_log(AccountStore(tmp_path / "unbounded.db", log_limit_bytes=10**12))
    bounded = _peak_log(AccountStore(tmp_path / "bounded.db", log_limit_bytes=2 * MB))
    assert unbounded > 6 * MB, "SQLite's own checkpoints alone let the log grow while writers take turns"
    assert bounded < 4 * MB, "the limit, plus at most the other writer's last transaction"
