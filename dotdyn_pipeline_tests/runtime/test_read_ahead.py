"""Reading ahead on a background thread: order kept, errors raised in the reader, early stops clean up."""

import threading

import pytest

from dotdyn_pipeline.runtime.read_ahead import read_ahead


def test_items_arrive_in_order_and_at_most_depth_ahead():
    produced: list[int] = []
    seen_ahead: list[int] = []

    def items():
        for number in range(10):
            produced.append(number)
            yield number

    for number in read_ahead(items(), depth=2):
        seen_ahead.append(len(produced) - number - 1)
    assert produced == list(range(10))
    assert max(seen_ahead) <= 3, "the producer waits while the queue is full"


def test_an_error_of_the_producer_is_raised_in_the_reader_after_the_items_before_it():
    def items():
        yield 1
        raise ValueError("page 2 refused")

    received = []
    with pytest.raises(ValueError, match="page 2 refused"):
        for item in read_ahead(items()):
            received.append(item)
    assert received == [1]


def test_a_reader_that_stops_early_stops_the_producer():
    def endless():
        number = 0
        while True:
            yield number
            number += 1

    reader = read_ahead(endless(), depth=1)
    assert next(reader) == 0
    reader.close()
    assert not any(t.name == "read-ahead" and t.is_alive() for t in threading.enumerate())
