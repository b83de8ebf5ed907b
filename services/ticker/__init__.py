"""ticker: publishes clock.tick (contract §8) with the wall time every ECC_TICK_SECONDS."""
