"""Benchmarks of the suite on the embedded stack: `python -m bench [suite ...]`.

Every suite runs against a private Tansu broker and SecantusDB started for the
run on free ports (never the ones `make up` uses), and every figure is written
beside the raw aiokafka produce/consume rate measured on the same broker in the
same run (`bench.common.raw_baseline`). See bench/README.md.

A suite is a module `bench/<name>.py` that defines

    SUITE = Suite(name="<name>", title="...", run=<async def run(ctx: Context) -> SuiteReport>)

`python -m bench` finds it by itself (modules whose name starts with `_` are skipped).
"""
