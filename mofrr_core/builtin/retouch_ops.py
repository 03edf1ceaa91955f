"""Built-in plugin: the retouching operations of the data engine (:mod:`mofrr_core.retouch`)."""
