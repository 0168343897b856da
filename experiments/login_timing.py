"""Sign-in time for an unknown address against a known one (wrong password), now and as it was.

Before issue 14 an unknown address skipped the scrypt check and answered about 16x faster, which
told an attacker which addresses have accounts. Prints median times and the unknown/known ratio.

    PYTHONPATH=. python experiments/login_timing.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from werkzeug.security import check_password_hash

from hype.accounts import authenticate, create_researcher, researcher_by_email, warm_up
from hype.db import make_engine, make_session_factory
from hype.migrate import upgrade


def old_authenticate(session, email: str, password: str):
    """The check as it was: no hash work when the address is unknown."""
    researcher = researcher_by_email(session, email)
    if researcher is None or not check_password_hash(researcher.password_hash, password):
        return None
    return researcher


def median_ms(fn, *args, n: int = 15) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn(*args)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'x.db'}")
        upgrade(engine)
        with make_session_factory(engine)() as session:
            create_researcher(session, "known@example.org", "correct horse battery")
            session.commit()
            warm_up()
            for name, fn in (("before", old_authenticate), ("now", authenticate)):
                unknown = median_ms(fn, session, "nobody@example.org", "wrong password")
                known = median_ms(fn, session, "known@example.org", "wrong password")
                print(f"{name:6s}: unknown {unknown:6.1f} ms, known {known:6.1f} ms, unknown/known = {unknown / known:.2f}")
        engine.dispose()


if __name__ == "__main__":
    main()
