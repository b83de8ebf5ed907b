"""entrust (port 8004): 事项委托 entrustment and 督办 supervision items, rules.md §4.

Seed articles 7 (事项委托: entrust matters to other courts, receive entrusted matters,
request supplements, return, reply in time), 8 (督办: receive, forward and issue
supervision items, make teams finish in time and reply level by level 逐级回复) and
21 (异地执行 cross-region enforcement reported up the chain: the level of an item).
Lifecycle per entrust id and per item id (a table of allowed transitions, rules.py);
an impossible step goes to the dead-letter topic with its reason. Deadlines on event
time (shared/deadline_book.py), alerts on `ecc.alerts`.
"""
