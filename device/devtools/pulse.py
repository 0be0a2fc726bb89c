"""A private PulseAudio daemon with null sinks, for paced audio without a sound card.

Tests, benchmarks and the demo use it to get real-time pacing on a machine with no sound card::

    with PrivatePulse(capture_file=speech_raw, record_file=out_raw) as pulse:
        env = pulse.env()          # ALSA_CONFIG_PATH points at the generated config
        # in a process started with env: AlsaCapture(CaptureConfig(device="paced_capture"))

ALSA PCMs written to :attr:`PrivatePulse.alsa_config_path`:

``pulse_capture``   the capture sink's monitor (silence unless something plays into it)
``pulse_playback``  the playback sink (``spk``)
``paced_capture``   ``pulse_capture`` with its samples replaced by ``capture_file`` (raw, same
                    format as the reader asks for), so a known file arrives at real speed
``paced_playback``  ``pulse_playback`` that also records what is written to ``record_file``

A ``pacat`` stream of zeros stays open on each sink (otherwise the first real stream stalls for
0.2-2 s), and with ``monitor_file`` a ``parec`` records what the playback sink really rendered.
The daemon's environment is private (``HOME``, ``XDG_RUNTIME_DIR``, ``PULSE_RUNTIME_PATH`` in a
temporary directory); ``PULSE_SERVER`` is never set for the application, the PCMs name the
server socket themselves. alsa-lib reads its configuration once per process, so apply
:meth:`PrivatePulse.env` before the first PCM is opened (or in a child process).
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from ..realtime.errors import VoiceDeviceError

#: ALSA's own top-level configuration, loaded before ours.
SYSTEM_ALSA_CONF = "/usr/share/alsa/alsa.conf"


class PulseUnavailable(VoiceDeviceError, RuntimeError):
    """The private PulseAudio daemon could not be started (or its binary is missing)."""

    def __init__(self, message: str, *, missing_binary: bool = False) -> None:
        super().__init__(message)
        self.missing_binary = missing_binary


class PrivatePulse:
    """Start a private ``pulseaudio`` with a capture sink (``cap``) and a playback sink (``spk``).

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        *,
        capture_file: str | os.PathLike[str] | None = None,
        record_file: str | os.PathLike[str] | None = None,
        monitor_file: str | os.PathLike[str] | None = None,
        rate: int = 48000,
        channels: int = 2,
        start_timeout_s: float = 10.0,
    ) -> None:
        self.capture_file = Path(capture_file) if capture_file is not None else None
        self.record_file = Path(record_file) if record_file is not None else None
        self.monitor_file = Path(monitor_file) if monitor_file is not None else None
        self.rate = rate
        self.channels = channels
        self.start_timeout_s = start_timeout_s
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._procs: list[subprocess.Popen[bytes]] = []
        self._daemon: subprocess.Popen[bytes] | None = None
        self.dir = Path()
        self.socket = Path()
        self.alsa_config_path = ""

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> PrivatePulse:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the daemon, write the ALSA config and open the keep-alive streams."""
        binary = shutil.which("pulseaudio")
        if binary is None:
            raise PulseUnavailable("pulseaudio binary not found on PATH", missing_binary=True)
        for tool in ("pacat", "parec"):
            if shutil.which(tool) is None:
                raise PulseUnavailable(f"{tool} not found on PATH", missing_binary=True)
        self._tmp = tempfile.TemporaryDirectory(prefix="voice-device-pulse-")
        self.dir = Path(self._tmp.name)
        for sub in ("home", "runtime"):
            (self.dir / sub).mkdir(mode=0o700)
        self.socket = self.dir / "native"
        script = self.dir / "daemon.pa"
        script.write_text(
            f"load-module module-native-protocol-unix auth-anonymous=1 socket={self.socket}\n"
            f"load-module module-null-sink sink_name=cap rate={self.rate} "
            f"channels={self.channels}\n"
            f"load-module module-null-sink sink_name=spk rate={self.rate} "
            f"channels={self.channels}\n"
        )
        log_path = self.dir / "daemon.log"
        with open(log_path, "wb") as log_file:
            self._daemon = subprocess.Popen(
                [
                    binary,
                    "-n",
                    "--daemonize=no",
                    "--exit-idle-time=-1",
                    "--use-pid-file=no",
                    "--disallow-module-loading=no",
                    "--log-target=stderr",
                    "-F",
                    str(script),
                ],
                env=self._daemon_env(),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
            )
        try:
            self._wait_ready(log_path)
            self._write_alsa_config()
            self._keep_alive()
            self._warm_up()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the helper streams and the daemon, remove the temporary directory."""
        procs = [*self._procs, *([self._daemon] if self._daemon is not None else [])]
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=3)
        self._procs.clear()
        self._daemon = None
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.cleanup()
            self._tmp = None

    # ------------------------------------------------------------------ environment

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """An environment for a process using the PCMs: ``base`` (or ``os.environ``) plus
        ``ALSA_CONFIG_PATH``, without ``PULSE_SERVER``."""
        env = dict(os.environ if base is None else base)
        env.pop("PULSE_SERVER", None)
        env["ALSA_CONFIG_PATH"] = self.alsa_config_path
        return env

    def pa_env(self) -> dict[str, str]:
        """An environment for ``pactl``/``pacat`` talking to this daemon."""
        env = self._daemon_env()
        env["PULSE_SERVER"] = f"unix:{self.socket}"
        return env

    def _daemon_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PULSE_", "DBUS_"))}
        env["HOME"] = str(self.dir / "home")
        env["XDG_RUNTIME_DIR"] = str(self.dir / "runtime")
        env["PULSE_RUNTIME_PATH"] = str(self.dir / "runtime")
        env["XDG_CONFIG_HOME"] = str(self.dir / "home")
        return env

    # ------------------------------------------------------------------ internals

    def _wait_ready(self, log_path: Path) -> None:
        assert self._daemon is not None
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._daemon.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise PulseUnavailable(
                    f"pulseaudio exited with status {self._daemon.returncode}: {tail.strip()}"
                )
            if self.socket.exists():
                probe = subprocess.run(
                    ["pactl", "list", "short", "sinks"],
                    env=self.pa_env(),
                    capture_output=True,
                    timeout=5,
                    check=False,
                )
                if probe.returncode == 0 and b"spk" in probe.stdout:
                    return
            time.sleep(0.05)
        tail = log_path.read_text(errors="replace")[-2000:]
        raise PulseUnavailable(
            f"pulseaudio did not come up within {self.start_timeout_s:.0f} s: {tail.strip()}"
        )

    def _write_alsa_config(self) -> None:
        server = f"unix:{self.socket}"
        parts = [
            f'pcm.pulse_capture {{\n  type pulse\n  server "{server}"\n  device "cap.monitor"\n}}',
            f'pcm.pulse_playback {{\n  type pulse\n  server "{server}"\n  device "spk"\n}}',
        ]
        if self.capture_file is not None:
            parts.append(
                'pcm.paced_capture {\n  type file\n  slave.pcm "pulse_capture"\n'
                f'  file "/dev/null"\n  infile "{self.capture_file}"\n  format "raw"\n}}'
            )
        if self.record_file is not None:
            parts.append(
                'pcm.paced_playback {\n  type file\n  slave.pcm "pulse_playback"\n'
                f'  file "{self.record_file}"\n  format "raw"\n}}'
            )
        conf = self.dir / "asound.conf"
        conf.write_text("\n".join(parts) + "\n")
        self.alsa_config_path = f"{SYSTEM_ALSA_CONF}:{conf}"

    def _warm_up(self) -> None:
        """Wait until both sinks render: a fresh null sink first sleeps ~2 s, and streams
        opened in that time stall."""
        deadline = time.monotonic() + self.start_timeout_s
        for sink in ("cap", "spk"):
            proc = subprocess.Popen(
                ["parec", f"--device={sink}.monitor", "--raw", "--latency-msec=10"],
                env=self.pa_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            try:
                assert proc.stdout is not None
                fd = proc.stdout.fileno()
                got = 0
                while got < 64:
                    timeout = deadline - time.monotonic()
                    if timeout <= 0 or not select.select([fd], [], [], timeout)[0]:
                        raise PulseUnavailable(f"pulseaudio sink {sink!r} does not render")
                    chunk = os.read(fd, 4096)
                    if not chunk:
                        raise PulseUnavailable(f"parec on {sink}.monitor ended")
                    got += len(chunk)
            finally:
                proc.kill()
                proc.wait()
                if proc.stdout is not None:
                    proc.stdout.close()

    def _keep_alive(self) -> None:
        fmt = ["--raw", "--format=s16le", f"--rate={self.rate}", f"--channels={self.channels}"]
        env = self.pa_env()
        for sink in ("cap", "spk"):
            with open("/dev/zero", "rb") as zeros:
                self._procs.append(
                    subprocess.Popen(
                        ["pacat", "--playback", f"--device={sink}", "--latency-msec=20", *fmt],
                        env=env,
                        stdin=zeros,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
        if self.monitor_file is not None:
            with open(self.monitor_file, "wb") as out:
                self._procs.append(
                    subprocess.Popen(
                        ["parec", "--device=spk.monitor", "--latency-msec=10", *fmt],
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.DEVNULL,
                    )
                )
