"""nodewatch (port 8003): 流程节点监管 node-deadline supervision, rules.md §0-§1.

Seed articles 9 (网拍 auction nodes), 13 (全流程节点监管: warnings before the due and
overdue alerts at key nodes), 16 (执保 preservation cases). Durable deadlines on
event time (shared/deadline_book.py), alerts on `ecc.alerts`.
"""
