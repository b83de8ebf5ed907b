"""intake (port 8001): the service window's way in (立案窗口, seed article 5)."""
