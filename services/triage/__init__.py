"""triage (port 8002): 繁简分流 triage of enforcement cases into simple (简案), complex (繁案) and
preservation (保全) tracks, and their assignment to teams (seed articles 12 and 16; rules.md §2).

Decides when a case's first network property-inquiry result (网络查控结果) arrives (执保 cases at
filing), revises when a later result changes the track, and publishes `triage.decided` on
`ecc.triage.decisions`. Policy: `rules/triage.yaml`.
"""
