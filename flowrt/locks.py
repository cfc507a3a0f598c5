"""Setting locks seen from the runtime: a lock given back wakes those waiting for it.

A waiter is an execution WAITING at its `setting.acquire()` with `waits_on = "lock:NAME"`.
Whoever frees a lock (a `release()`, the end, cancel or archive of its holder) wakes every
waiter at once; each tries `acquire` again, one gets the lock and the others wait again.
Waking is a courtesy, never what correctness rests on: a lock whose holder has ended is free
whether or not its release was stored, and the reaper wakes waiters of a free lock whose
wake-up was lost (`Store.wake_lock_waiters`).
"""

from __future__ import annotations

import logging

from flowrt.core import RuntimeCore
from flowrt.storage.locks import LOCK_PREFIX

log = logging.getLogger("flowrt")


class Locks(RuntimeCore):
    """The `Runtime` methods that release an execution's locks and wake their waiters."""

    def lock_freed(self, name: str) -> None:
        """Wake every execution waiting for setting `name`'s lock, where it is loaded.

        A wake-up that fails (the broker is away) is left to the reaper.
        """
        try:
            for record in self.store.list_lock_waiters(name):
                if record.wake_at is None:
                    self._wake(record.id)
                else:
                    # Its deadline (acquire's timeout) stays in wake_at: send its step as it
                    # is; refused again, it waits on for the rest of its timeout.
                    self.send(record, "wake", record.worker)
        except Exception as error:
            log.warning(
                "the lock of setting %r was freed, but waking its waiters failed (%s: %s); "
                "the reaper wakes them",
                name,
                type(error).__name__,
                error,
            )

    def _release_locks(self, execution_id: str) -> None:
        """The execution ended (or was archived): free what it holds, wake the waiters."""
        try:
            for name in self.store.release_locks(execution_id):
                self.lock_freed(name)
        except Exception as error:  # its end is stored: the locks are free anyway
            log.warning(
                "execution %s ended, but giving back its setting locks failed (%s: %s); "
                "the reaper wakes their waiters",
                execution_id,
                type(error).__name__,
                error,
            )

    def _recheck_lock(self, waits_on: str | None) -> None:
        """A wait for a lock was just stored: should the lock have been freed meanwhile, its
        release found no one to wake, so wake the waiters now."""
        if waits_on is None or not waits_on.startswith(LOCK_PREFIX):
            return
        name = waits_on[len(LOCK_PREFIX) :]
        if self.store.lock_holder(name) is None:
            self.lock_freed(name)
