"""triage (port 8002): 繁简分流 triage of enforcement cases into simple (简案), complex (繁案) and
preservation (保全) tracks, and their assignment to teams (seed articles 12 and 16; rules.md §2).

Decides when a case's first network property-inquiry result (网络查控结果) arrives (执保 cases at
filing), revises when a later result changes the track, and publishes `triage.decided` on
`ecc.triage.decisions`. Policy: `rules/triage.yaml`.

Team assignment counts open cases as of the clock watermark, so the order of events and
ticks matters: the handler puts each batch in the order a time-ordered reading gives and
defers what that reading has not reached (shared/runtime/alignment.window_order,
Effects.defer), so a backlog read in any partition order decides as a live run does.
"""
