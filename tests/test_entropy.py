"""Entropy read by a flow (os.urandom, secrets, SystemRandom, unseeded Random) is journaled."""

from __future__ import annotations

import textwrap

from conftest import write_flow

import flowrt
from flowrt.status import Status

ENTROPY_FLOW = """
    import os
    import os.path
    import random
    import secrets
    from os import urandom
    from random import SystemRandom

    import flow_api


    def handler(system, this):
        values = {
            'urandom': os.urandom(16).hex(),
            'from_os': urandom(8).hex(),
            'token_hex': secrets.token_hex(),
            'token_urlsafe': secrets.token_urlsafe(12),
            'choice': secrets.choice('abcdefghijklmnopqrstuvwxyz' * 4),
            'randbelow': secrets.randbelow(10**12),
            'randbits': secrets.randbits(64),
            'system_random': SystemRandom().random(),
            'system_randrange': random.SystemRandom().randrange(10**12),
            'system_bytes': SystemRandom().randbytes(8).hex(),
            'unseeded_random': random.Random().random(),
            'seeded_random': random.Random(42).random(),
        }
        point = this.save_dump('p')
        if point.restored == 0:  # a setting keeps the first run's values across the restore
            system.setting('first').save(value=values)
            this.load_dump('p', by='name')
        this.save(output_value={'first': system.setting('first').get(), 'replayed': values})
        this.success('read')
"""


def test_entropy_read_by_a_flow_replays_as_it_was(client, tmp_path):
    handle = flowrt.start(write_flow(tmp_path, textwrap.dedent(ENTROPY_FLOW))).wait(30)
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    first, replayed = handle.outputs["first"], handle.outputs["replayed"]
    assert replayed == first  # replay gave back every value read before the savepoint
    assert len(first["urandom"]) == 32 and len(first["token_hex"]) == 64


def test_entropy_read_after_a_restored_savepoint_is_read_afresh(client, tmp_path):
    source = """
        import secrets

        import flow_api


        def handler(system, this):
            point = this.save_dump('p')
            token = secrets.token_hex()
            if point.restored == 0:
                system.setting('first').save(value=token)
                this.load_dump('p', by='name')
            this.save(output_value={'first': system.setting('first').get(), 'again': token})
    """
    handle = flowrt.start(write_flow(tmp_path, textwrap.dedent(source))).wait(30)
    assert handle.status is Status.ENDED_SUCCESS, handle.record().error
    assert handle.outputs["first"] != handle.outputs["again"]
