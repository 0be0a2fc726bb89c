"""Developer tools shipped for ``voice-device simulate`` and ``voice-device demo``.

* :mod:`.simulator` — a local realtime model (OpenAI GA and xAI dialects) on loopback, built
  from :mod:`.simserver`, :mod:`.simreplies`, :mod:`.simbase` and :mod:`.simaudio`;
* :mod:`.demo` — the whole appliance on this machine, scripted;
* :mod:`.pulse` — a private PulseAudio daemon with null sinks (paced audio without a card),
  used by the demo, the paced tests and the benchmarks.
"""
