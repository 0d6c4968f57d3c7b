"""Helpers of the data-parallel tests (fool, train, defend): how far two checkpoints' weights lie apart."""

from __future__ import annotations


def max_weight_diff(a_id: str, b_id: str) -> float:
    """The largest absolute difference between two checkpoints' weights and buffers."""
    from backend.models.registry import Registry

    reg = Registry()
    a, _ = reg.load(a_id, device="cpu")
    b, _ = reg.load(b_id, device="cpu")
    sa, sb = a.state_dict(), b.state_dict()
    return max(float((sa[k].double() - sb[k].double()).abs().max()) for k in sa)


def one_and_two(run, config: dict, what: str):
    """`run(config)` in one process and in two (gloo); returns (one's card, two's card, two's progress
    reports) after checking that the weights agree and every report came from a 2-process run."""
    one = run(config)
    seen: list = []
    two = run({**config, "world_size": 2}, progress=seen.append)
    diff = max_weight_diff(one.id, two.id)
    print(f"{what}: max weight difference, 2 gloo processes vs 1: {diff:.3g}")
    assert diff < 1e-5
    assert two.config["devices"] == 2 and seen and all(p.extra["devices"] == 2 for p in seen)
    return one, two, seen
