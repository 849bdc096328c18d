"""GEM: unrolled and implicit EM layers that learn graph weights on ``edge_index``."""

__all__: list[str] = []
