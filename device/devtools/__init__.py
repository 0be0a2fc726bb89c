"""Developer tools shipped for ``voice-device simulate``/``demo``: the realtime simulator
(:mod:`.simserver`, with :mod:`.simreplies`, :mod:`.simbase` and :mod:`.simaudio`), imported as
:mod:`device.simulator`."""
