"""The kernel's session cache is bounded, least recently used out first."""

from notebook_orch.kernel.cache import SessionCache
from notebook_orch.kernel.runtime import AssetRuntime


def test_session_cache_keeps_the_most_recent_values():
    rt = AssetRuntime()
    rt.cache = SessionCache(entries=4)
    for i in range(6):
        rt._remember("a", f"p{i}", f"v{i}", {"i": i}, handler="json")
    assert list(rt.cache) == [("a", "p2"), ("a", "p3"), ("a", "p4"), ("a", "p5")]
    assert rt.cache[("a", "p5")] == ("v5", {"i": 5})
    rt._remember("a", "p2", "v2", {"i": 2}, handler="json")  # used again: now the most recent
    rt._remember("a", "p6", "v6", {"i": 6}, handler="json")
    assert list(rt.cache) == [("a", "p4"), ("a", "p5"), ("a", "p2"), ("a", "p6")]
    rt._remember("a", "p7", "v7", object(), handler="pickle")  # pickled values are never cached
    assert ("a", "p7") not in rt.cache
