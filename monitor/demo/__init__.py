"""``driftmon demo``: an embedded broker, a synthetic model and the whole loop on one machine."""
