"""nodewatch (port 8003): 流程节点监管 node-deadline supervision, rules.md §0-§1.

Seed articles 9 (网拍 auction nodes), 13 (全流程节点监管: warnings before the due and
overdue alerts at key nodes), 16 (执保 preservation cases). Rules: rules/nodes.yaml
(ECC_RULES overrides). Durable deadlines on event time (shared/deadline_book.py,
docs/deadlines.md); alerts on `ecc.alerts`. Reads ecc.case.events, ecc.triage.decisions
(the team an alert carries) and ecc.clock.

When ticks are applied (the alerts themselves depend only on event times):
- shared/runtime/alignment.py (the gate): a tick waits while a case-event or triage partition has unread
  messages older than it (a backlog read clock-first would otherwise raise alerts
  for facts not read yet);
- triage's progress (alignment.UpstreamProgress, fed by the runtime): a tick waits while
  triage's consumer group has not committed a case event timed before it that nodewatch has
  read, so the decisions (the team an alert carries) are on the topic first; the decisions
  partitions' lag is then measured against fresh end offsets;
- handlers.py, until triage has committed on every case partition nodewatch reads (start-up,
  triage not running): a tick at or after the time a triage decision is due (the first
  network inquiry result; a 执保 filing) waits for that decision.
Both waits end when triage makes no progress for ECC_NODEWATCH_TRIAGE_WAIT_SECONDS (default
30) of wall time; 0 turns them off (nodewatch replayed without triage).
"""
