"""sentiment (port 8006): 舆情 public-sentiment items, rules.md §6.

Seed article 10 (舆情监管: register, analyse, identify and handle the day's items; the
bureau head signs off (审签); then the item is transferred to the case team). Severity
by keyword lists and patterns (rules/sentiment.yaml), linkage to the cases named in the
text, `sentiment.major` / `sentiment.serious` raised at registration, the response rule
per level on event time (shared/deadline_book.py), the case team from triage decisions.
"""
