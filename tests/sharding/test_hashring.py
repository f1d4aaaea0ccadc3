"""The hash ring, the placement key, the assigner's decision and its view of member Leases."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kube_runtime.sharding.hashring import HashRing, placement_key, ring_key
from kube_runtime.sharding.membership import Membership
from kube_runtime.sharding.placement import MemberState, decide

KEYS = [ring_key("", "ConfigMap", "ns", f"cm-{i}") for i in range(5000)]


def test_empty_ring_places_nothing() -> None:
    assert HashRing(()).place("x") is None


def test_placement_ignores_member_order() -> None:
    assert [HashRing(["a", "b", "c"]).place(k) for k in KEYS[:200]] == [
        HashRing(["c", "a", "b"]).place(k) for k in KEYS[:200]
    ]


def test_join_moves_only_to_the_new_member_and_about_one_nth() -> None:
    before = HashRing([f"m{i}" for i in range(4)])
    after = HashRing([f"m{i}" for i in range(5)])
    moved = [(before.place(k), after.place(k)) for k in KEYS if before.place(k) != after.place(k)]
    assert {new for _, new in moved} == {"m4"}
    assert 0.1 < len(moved) / len(KEYS) < 0.3  # 1/5 expected


def test_leave_moves_only_the_leavers_objects() -> None:
    before = HashRing(["a", "b", "c", "d"])
    after = HashRing(["a", "b", "c"])
    for key in KEYS:
        if before.place(key) != "d":
            assert after.place(key) == before.place(key)


def test_spread_with_virtual_nodes() -> None:
    counts = Counter(HashRing([f"m{i}" for i in range(10)]).place(k) for k in KEYS)
    mean = len(KEYS) / 10
    assert max(counts.values()) / mean < 1.5
    assert HashRing(["a"], tokens=1).place("k") == "a"
    with pytest.raises(ValueError, match="tokens"):
        HashRing(["a"], tokens=0)


@given(st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=6, unique=True), st.text(max_size=20))
def test_a_key_lands_on_a_member(members: list[str], key: str) -> None:
    assert HashRing(members).place(key) in members


def test_children_are_keyed_by_their_controller_owner() -> None:
    owner = {"metadata": {"name": "gen", "namespace": "ns"}}
    child = {
        "metadata": {
            "name": "gen-abc",
            "namespace": "ns",
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Pod", "name": "other"},
                {"apiVersion": "example.com/v1", "kind": "Generator", "name": "gen", "controller": True},
            ],
        }
    }
    assert placement_key(child, "", "ConfigMap") == placement_key(owner, "example.com", "Generator")
    assert placement_key(owner, "example.com", "Generator") == "example.com/Generator/ns/gen"
    not_controlled = {
        "metadata": {"name": "x", "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "p"}]}
    }
    assert placement_key(not_controlled, "", "Secret") == "/Secret//x"


@pytest.mark.parametrize(
    ("current", "draining", "desired", "state", "expected"),
    [
        (None, False, None, None, None),
        (None, False, "a", None, ("assign", "a")),
        ("a", False, "a", MemberState.ALIVE, None),
        ("a", False, "b", MemberState.ALIVE, ("drain", "a")),
        ("a", True, "b", MemberState.ALIVE, None),
        ("a", True, "a", MemberState.ALIVE, None),
        ("a", False, "b", MemberState.MOVABLE, ("assign", "b")),
        ("a", True, "b", MemberState.MOVABLE, ("assign", "b")),
        ("a", False, "b", MemberState.FENCING, None),
        ("a", False, None, MemberState.MOVABLE, None),
    ],
)
def test_decide(
    current: str | None, draining: bool, desired: str | None, state: MemberState | None, expected: object
) -> None:
    assert decide(current, draining, desired, state) == expected


def lease(name: str, holder: str, version: str, duration: int = 15) -> dict[str, object]:
    return {
        "metadata": {"name": name, "resourceVersion": version},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration},
    }


def test_membership_expiry_is_measured_from_first_sight() -> None:
    view = Membership(15.0)
    view.observe(lease("a", "a", "1"), now=100.0)
    view.observe(lease("b", "", "2"), now=100.0)  # released
    view.observe(lease("c", "someone-else", "3"), now=100.0)  # held by the assigner
    assert view.alive(100.0) == {"a"}
    view.observe(lease("a", "a", "1"), now=110.0)  # the same record again: no renewal
    assert view.alive(114.9) == {"a"}
    assert view.alive(115.0) == frozenset()
    view.observe(lease("a", "a", "4"), now=116.0)  # renewed
    assert view.alive(130.9) == {"a"}
    assert view.next_change(120.0) == 131.0


def test_membership_deleted_lease_fences_until_its_record_expires() -> None:
    view = Membership(15.0)
    view.observe(lease("a", "a", "1"), now=0.0)
    view.forget("a", now=5.0)
    assert view.alive(5.0) == frozenset()
    assert view.record("a") is None
    assert view.fenced_until("a") == 20.0
    view.reset([lease("b", "b", "2")], now=6.0)
    assert view.alive(6.0) == {"b"}
