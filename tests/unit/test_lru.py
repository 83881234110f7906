"""The one small LRU (the mount's caches, the blob reader's tree cache): bounded by the total
weight of its values, the newest kept whatever it weighs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from snapstore.lru import WeightedLru


def test_the_least_recently_used_go_first_once_the_weight_is_passed() -> None:
    cache: WeightedLru[str, bytes] = WeightedLru(10, len)
    cache.put("a", b"1234")
    cache.put("b", b"1234")
    assert cache.get("a") == b"1234"  # a is now the most recent
    cache.put("c", b"1234")
    assert cache.get("b") is None and cache.get("a") == b"1234" and cache.get("c") == b"1234"
    assert cache.weight == 8 and len(cache) == 2


def test_counted_by_entries_and_replaced_in_place() -> None:
    cache: WeightedLru[int, str] = WeightedLru(3, lambda _: 1)
    for n in range(5):
        cache.put(n, str(n))
    assert [cache.get(n) for n in range(5)] == [None, None, "2", "3", "4"]
    cache.put(3, "three")
    assert cache.get(3) == "three" and len(cache) == 3


def test_the_newest_stays_whatever_it_weighs() -> None:
    cache: WeightedLru[str, bytes] = WeightedLru(4, len)
    cache.put("small", b"12")
    cache.put("huge", b"x" * 100)
    assert cache.get("huge") == b"x" * 100 and cache.get("small") is None and len(cache) == 1


def test_threads_keep_the_weight_right() -> None:
    cache: WeightedLru[int, bytes] = WeightedLru(1000, len)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda n: cache.put(n % 300, bytes(n % 7 + 1)), range(5000)))
    assert cache.weight <= 1000 and cache.weight == sum(len(cache.get(k) or b"") for k in range(300))
