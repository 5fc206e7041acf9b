"""How queued instances are split into Celery messages."""

from __future__ import annotations

from runs.scheduling.executors import batches


class BatchesTests:
    def test_it_sends_one_instance_per_message_while_there_are_few(self) -> None:
        assert batches([1, 2, 3], max_size=16, min_messages=32) == [[1], [2], [3]]

    def test_it_groups_many_instances_but_keeps_enough_messages_for_every_worker(self) -> None:
        groups = batches(list(range(1000)), max_size=16, min_messages=32)
        assert [i for g in groups for i in g] == list(range(1000))
        assert max(len(g) for g in groups) == 16
        assert len(groups) >= 32

    def test_it_fills_the_minimum_number_of_messages_before_growing_batches(self) -> None:
        groups = batches(list(range(100)), max_size=16, min_messages=32)
        assert len(groups) == 25 and {len(g) for g in groups} == {4}
