"""The runtime every service shares: batch consumer, inbox, outbox, health, process wiring.

See docs/adr/0001-consumer-runtime.md for why it is a plain aiokafka batch loop.
"""
