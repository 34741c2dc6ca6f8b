"""Request, trace and span ids: hex of the asked length, never repeated, not even by a
forked worker that inherited the parent's buffer."""

from __future__ import annotations

import os

from gateway.core import ids


def test_ids_have_the_asked_length_and_are_hex() -> None:
    for nbytes in (8, 12, 16, 1, 2048, 4096, 10_000):
        found = ids.token_hex(nbytes)
        assert len(found) == 2 * nbytes
        int(found, 16)


def test_no_id_repeats_across_many_buffers() -> None:
    drawn = [ids.token_hex(12) for _ in range(50_000)]  # ~150 refills of the buffer
    assert len(set(drawn)) == len(drawn)


def test_a_forked_child_does_not_hand_out_its_parents_next_ids() -> None:
    ids.token_hex(8)  # the buffer is filled: a child without the fork hook would copy it
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        os.close(read)
        os.write(write, "".join(ids.token_hex(16) for _ in range(8)).encode())
        os._exit(0)
    os.close(write)
    child = b""
    while chunk := os.read(read, 4096):
        child += chunk
    os.close(read)
    os.waitpid(pid, 0)
    parent = "".join(ids.token_hex(16) for _ in range(8))
    assert len(child) == len(parent) == 256
    assert child.decode() != parent
    child_ids = {child.decode()[i:i + 32] for i in range(0, 256, 32)}
    assert child_ids.isdisjoint({parent[i:i + 32] for i in range(0, 256, 32)})
