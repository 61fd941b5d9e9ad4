"""Render a run's HTML report and take a PNG screenshot of it with headless Chromium.

    python scripts/screenshot_report.py RUN_DIR [--png OUT.png] [--html OUT.html]
        [--width 1280] [--expand] [--height N [--offset Y]]

A check by eye that the page reads well: fonts, widths, colours, diff highlights. Needs
Chromium (Debian: `apt-get install chromium`). Chromium runs with a fresh profile and
everything that talks to the network turned off; the page itself loads nothing either.

By default the shot is the whole page: Chromium is driven over its DevTools pipe to
measure the page and capture it beyond the window. With `--height N` the shot is instead
Chromium's plain `--screenshot` of an N-pixel-tall window, starting `--offset` pixels down
the page (the page is shown through a frame moved up by that much): a way to look at one
part of a long report at full resolution.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import math
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from semgrad.optim.runfiles import atomic_write_text
from semgrad.report import load_run, render_html, render_report

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
TIMEOUT_S = 60.0


def find_chromium(explicit: str | None) -> str:
    for name in (explicit,) if explicit else CHROMIUM_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit(
        "Chromium was not found. Install it (Debian: `apt-get install chromium`) or pass "
        "--chromium PATH."
    )


def chromium_args(chromium: str, profile: str, width: int, height: int) -> list[str]:
    return [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ]


def window_screenshot(
    chromium: str, html: Path, png: Path, width: int, height: int, offset: int
) -> None:
    """Chromium's --screenshot: exactly the window, `offset` pixels down the page."""
    url = html.resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="semgrad-chromium-") as profile:
        if offset:
            frame = Path(profile) / "frame.html"
            frame.write_text(
                '<!DOCTYPE html><html><body style="margin:0;overflow:hidden">'
                f'<iframe src="{url}" style="position:absolute;top:-{offset}px;left:0;'
                f'width:{width}px;height:{offset + height}px;border:0"></iframe></body></html>',
                encoding="utf-8",
            )
            url = frame.as_uri()
        cmd = [*chromium_args(chromium, profile, width, height), f"--screenshot={png}", url]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0 or not png.exists():
        raise SystemExit(
            f"Chromium failed (exit {done.returncode}) and wrote no screenshot.\n"
            f"command: {' '.join(cmd)}\nstderr:\n{done.stderr[-2000:]}"
        )


class DevTools:
    """The DevTools protocol over --remote-debugging-pipe: Chromium reads commands on its
    fd 3 and writes replies and events on its fd 4, each a JSON text ended by a NUL byte."""

    def __init__(self, args: list[str]) -> None:
        to_chromium, self._out = os.pipe()
        self._in, from_chromium = os.pipe()

        def wire_fds() -> None:  # runs in the child, before exec
            os.dup2(to_chromium, 3)
            os.dup2(from_chromium, 4)

        self.proc = subprocess.Popen(
            [*args, "--remote-debugging-pipe", "about:blank"],
            pass_fds=(3, 4),
            preexec_fn=wire_fds,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        os.close(to_chromium)
        os.close(from_chromium)
        self._buffer = b""
        self._next_id = 0

    def receive(self) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT_S
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                raise SystemExit(f"Chromium did not answer within {TIMEOUT_S:g} s")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                stderr = (
                    self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                )
                raise SystemExit(f"Chromium closed the DevTools pipe; stderr:\n{stderr[-2000:]}")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return dict(json.loads(message))

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        while True:  # events that arrive before the reply are not needed here
            reply = self.receive()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise SystemExit(f"DevTools {method} failed: {reply['error']}")
                return dict(reply.get("result", {}))

    def wait_for(self, event: str) -> None:
        while self.receive().get("method") != event:
            pass

    def close(self) -> None:
        with contextlib.suppress(SystemExit):  # it may close the pipe before it answers
            self.call("Browser.close")
        os.close(self._out)
        os.close(self._in)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def full_page_screenshot(chromium: str, html: Path, png: Path, width: int) -> int:
    """The whole page, however tall; returns its height in pixels."""
    with tempfile.TemporaryDirectory(prefix="semgrad-chromium-") as profile:
        tools = DevTools(chromium_args(chromium, profile, width, 1000))
        try:
            target = tools.call("Target.createTarget", url="about:blank")["targetId"]
            session = tools.call("Target.attachToTarget", targetId=target, flatten=True)[
                "sessionId"
            ]
            tools.call("Page.enable", session)
            tools.call("Page.navigate", session, url=html.resolve().as_uri())
            tools.wait_for("Page.loadEventFired")
            size = tools.call("Page.getLayoutMetrics", session)["cssContentSize"]
            height = math.ceil(float(size["height"]))
            tools.call(
                "Emulation.setDeviceMetricsOverride",
                session,
                width=width,
                height=height,
                deviceScaleFactor=1,
                mobile=False,
            )
            shot = tools.call(
                "Page.captureScreenshot", session, format="png", captureBeyondViewport=True
            )
        finally:
            tools.close()
    png.write_bytes(base64.b64decode(shot["data"]))
    return height


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("run_dir", type=Path, help="a run directory")
    parser.add_argument("--png", type=Path, help="screenshot path [default: RUN_DIR/report.png]")
    parser.add_argument("--html", type=Path, help="report path [default: RUN_DIR/report.html]")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument(
        "--height", type=int, help="shoot a window this tall instead of the whole page"
    )
    parser.add_argument("--offset", type=int, default=0, help="with --height: start this far down")
    parser.add_argument(
        "--expand", action="store_true", help="open every collapsible part before the shot"
    )
    parser.add_argument("--chromium", help="the Chromium binary [default: found on PATH]")
    args = parser.parse_args(argv)
    chromium = find_chromium(args.chromium)
    html = render_report(args.run_dir, args.html)
    if args.expand:
        atomic_write_text(html, render_html(load_run(args.run_dir), expand=True))
    png = (args.png or args.run_dir / "report.png").resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    if args.height:
        window_screenshot(chromium, html, png, args.width, args.height, args.offset)
        size = f"{args.width}x{args.height} from y={args.offset}"
    else:
        size = f"{args.width}x{full_page_screenshot(chromium, html, png, args.width)}, full page"
    print(f"report: {html}\nscreenshot: {png} ({size})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
