"""The `heka serve` daemon: inputs -> router (matchers) -> filters and outputs."""
