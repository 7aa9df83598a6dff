"""Issue 13's link swaps against the running daemon (watcher + intake + recorder here, a real worker
process): a sales member must never get finance's text under a sales name.

Each swap has to land while the watcher holds the sales file pending. An empty file waits three times
``stable_seconds`` before it is handed, so the test drops an empty one, proves the watcher has seen
it (a sentinel dropped after it is queued: the watcher takes events in order), then swaps. A second,
empty sentinel dropped after the swap is handed only after anything the swap could have let through
(it waits three times as long), so once its record is final every leak would be on record too.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from config.settings import Settings
from daemon.records import FINAL_STATUSES, ResultRecord, Status
from daemon.results.store import SqliteStore
from tests.daemon.servicekit import make_settings, running, store_of, text_image
from tests.polling import wait_until

SECRET = "Payroll secret"
RESULT_SECONDS = 180.0
_names = itertools.count(1)


@dataclass
class Share:
    settings: Settings
    store: SqliteStore

    @property
    def root(self) -> Path:
        return self.settings.shared_dir

    def records(self, path: Path) -> list[ResultRecord]:
        return [r for r in self.store.list(limit=500) if r.path == str(path)]

    def final(self, path: Path) -> ResultRecord:
        def find() -> ResultRecord | None:
            return next((r for r in self.records(path) if r.status in FINAL_STATUSES), None)

        return wait_until(find, RESULT_SECONDS, f"a final record of {path.name}", interval=0.1)

    def sentinel(self, *, empty: bool = False) -> Path:
        path = self.root / "sales" / f"sentinel-{next(_names)}.png"
        if empty:
            path.write_bytes(b"")
        else:
            text_image(path, "Sales sentinel", seed=next(_names))
        return path

    def pending_empty(self, path: Path) -> None:
        """Drop ``path`` empty and wait until the watcher has it pending."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        seen = self.sentinel()
        wait_until(lambda: self.records(seen), 60, "the sentinel queued (so the empty file is pending)")

    def assert_no_leak(self, path: Path) -> None:
        """Once every record that could carry a leak is final: no sales result of ``path`` holds
        finance's text (it has none, or a failed one saying why)."""
        last = self.sentinel(empty=True)
        self.final(last)
        for rec in self.records(path):
            assert SECRET.lower() not in rec.text.lower(), f"{rec.path} got finance's text: {rec}"
            assert rec.status == Status.FAILED and rec.error and "symbolic link" in rec.error, rec


@pytest.fixture(scope="module")
def share(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Share]:
    base = make_settings(tmp_path_factory.mktemp("links"), stable_seconds=2.0)
    settings = replace(base, teams=replace(base.teams, channels="sales=sales, finance=ops"))
    payroll = text_image(settings.shared_dir / "finance" / "payroll.png", SECRET)
    (settings.shared_dir / "finance" / "reports").mkdir(parents=True)
    shutil.copyfile(payroll, settings.shared_dir / "finance" / "reports" / "payroll.png")
    (settings.shared_dir / "sales").mkdir()
    with running(settings, workers=1):
        kit = Share(settings, store_of(settings))
        try:
            first = kit.final(payroll)
            assert first.status == Status.DONE and SECRET.lower() in first.text.lower(), first
            yield kit
        finally:
            kit.store.close()


def test_a_file_swapped_for_a_link_to_another_channel_is_not_read(share: Share) -> None:
    """``cp some.png sales/x.png; ln -s $SHARED/finance/payroll.png sales/.l; mv -f sales/.l sales/x.png``."""
    path = share.root / "sales" / "x.png"
    share.pending_empty(path)
    link = path.with_name(".l")
    link.symlink_to(share.root / "finance" / "payroll.png")
    os.replace(link, path)
    share.assert_no_leak(path)


def test_a_folder_swapped_for_a_link_to_another_channels_folder_lets_nothing_through(share: Share) -> None:
    """``sales/reports/`` (holding a file the watcher has seen) replaced by a link to ``finance/reports/``."""
    folder = share.root / "sales" / "reports"
    path = folder / "payroll.png"
    share.pending_empty(path)
    shutil.rmtree(folder)
    folder.symlink_to(share.root / "finance" / "reports", target_is_directory=True)
    share.assert_no_leak(path)
    fresh = share.root / "finance" / "reports" / "fresh.png"  # new files behind the link: finance's alone
    text_image(fresh, "Fresh finance page", seed=5)
    assert share.final(fresh).channel == "finance"
    share.assert_no_leak(folder / "fresh.png")
