"""The chaos suite: worker processes contend for one lock while a nemesis injects faults."""
