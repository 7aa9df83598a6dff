"""The account store on a real SQLite file: salted hashes only, checked names and passwords,
no duplicates, the first team remembered, and a wrong password verifies to None."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from web.accounts import AccountError, AccountStore, User

PASSWORD = "correct horse battery"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "accounts.sqlite3"


@pytest.fixture
def accounts(path: Path) -> Iterator[AccountStore]:
    store = AccountStore(path)
    yield store
    store.close()


def stored_bytes(path: Path) -> bytes:
    """The database with its write-ahead log and shared memory, as they lie on disk."""
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))


def test_no_plaintext_password_on_disk(accounts: AccountStore, path: Path) -> None:
    accounts.add_user("alice", PASSWORD, "alpha", admin=True)
    accounts.add_user("bob", PASSWORD, "alpha")
    data = stored_bytes(path)
    assert b"alice" in data  # the files really hold the rows ...
    assert PASSWORD.encode() not in data  # ... but not the password
    assert b"horse" not in data
    hashes = [row[0] for row in accounts._conn.execute("SELECT password_hash FROM users ORDER BY username")]
    assert all(h.startswith("scrypt:") for h in hashes), hashes
    assert hashes[0] != hashes[1]  # salted: one password, two hashes


def test_verify(accounts: AccountStore) -> None:
    created = accounts.add_user("alice", PASSWORD, "alpha", admin=True)
    assert created == User("alice", "alpha", "admin") and created.is_admin
    assert accounts.verify("alice", PASSWORD) == created
    assert accounts.verify("alice", "wrong password") is None
    assert accounts.verify("alice", PASSWORD.upper()) is None
    assert accounts.verify("alice", PASSWORD + " ") is None
    assert accounts.verify("alice", "") is None
    assert accounts.verify("nobody", PASSWORD) is None
    assert accounts.verify("Alice", PASSWORD) is None  # names are exact
    assert accounts.verify("alice' OR '1'='1", PASSWORD) is None
    assert accounts.get("alice") == created and accounts.get("nobody") is None


@pytest.mark.parametrize("password", ["", "1234567", "short"])
def test_short_password_refused(accounts: AccountStore, password: str) -> None:
    with pytest.raises(AccountError, match="at least 8 characters"):
        accounts.add_user("alice", password, "alpha")
    assert accounts.get("alice") is None and accounts.teams() == []


def test_eight_characters_are_enough(accounts: AccountStore) -> None:
    accounts.add_user("alice", "12345678", "alpha")
    assert accounts.verify("alice", "12345678") == User("alice", "alpha", "member")


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a b",
        "x" * 65,
        "alice\n",
        "alice\r\n",
        "\nalice",
        "../admin",
        "al/ice",
        "ali;ce",
        "al'ice",
        "名字",
        "alïce",
        "alice\x00",
    ],
)
def test_bad_names_refused(accounts: AccountStore, name: str) -> None:
    with pytest.raises(AccountError, match="user name"):
        accounts.add_user(name, PASSWORD, "alpha")
    with pytest.raises(AccountError, match="team name"):
        accounts.add_user("alice", PASSWORD, name)
    assert accounts.teams() == [] and accounts.get("alice") is None


@pytest.mark.parametrize("name", ["a", "x" * 64, "alice.smith", "a_b-c", "alice@example.com", "A9"])
def test_good_names_accepted(accounts: AccountStore, name: str) -> None:
    assert accounts.add_user(name, PASSWORD, name) == User(name, name, "member")


def test_duplicate_user_refused(accounts: AccountStore) -> None:
    accounts.add_user("alice", PASSWORD, "alpha", admin=True)
    with pytest.raises(AccountError, match="already exists"):
        accounts.add_user("alice", "another password", "gamma")
    assert accounts.verify("alice", PASSWORD) == User("alice", "alpha", "admin")  # untouched
    assert accounts.verify("alice", "another password") is None
    assert accounts.teams() == ["alpha"]  # the refused user's new team was rolled back
    accounts.add_user("bob", PASSWORD, "alpha")  # the store still works after the rollback


def test_first_team_is_the_first_created(accounts: AccountStore) -> None:
    assert accounts.first_team() is None
    accounts.add_user("carol", PASSWORD, "beta")
    accounts.add_user("alice", PASSWORD, "alpha", admin=True)
    accounts.add_user("dave", PASSWORD, "beta")
    assert accounts.first_team() == "beta"
    assert accounts.teams() == ["beta", "alpha"]


def test_accounts_persist(path: Path) -> None:
    first = AccountStore(path)
    first.add_user("alice", PASSWORD, "alpha", admin=True)
    first.close()
    again = AccountStore(path)
    try:
        assert again.verify("alice", PASSWORD) == User("alice", "alpha", "admin")
        assert again.first_team() == "alpha"
    finally:
        again.close()


def test_password_checks_run_through_the_given_runner(path: Path) -> None:
    """The gevent server passes its thread pool: every hash check, known user or not, goes there."""
    import threading

    calls: list[str] = []

    def in_a_thread(fn, *args):  # type: ignore[no-untyped-def]
        out: list[object] = []
        thread = threading.Thread(target=lambda: out.append(fn(*args)))
        thread.start()
        thread.join()
        calls.append(fn.__name__)
        return out[0]

    store = AccountStore(path, run_blocking=in_a_thread)
    try:
        store.add_user("alice", "correct horse", "alpha")
        assert store.verify("alice", "correct horse") == User("alice", "alpha", "member")
        assert store.verify("alice", "wrong horse") is None
        assert store.verify("nobody", "correct horse") is None
        assert calls == ["check_password_hash"] * 3
    finally:
        store.close()
