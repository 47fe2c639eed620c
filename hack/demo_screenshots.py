"""The README's pictures of the demo, from a real run: `aiops demo ratelimiter --auto` in a
120x40 tmux window on the system `aiops up` started; the pane is captured with its colours
when the detection chapter shows the incident and when the summary shows TTR, rendered by
Rich to SVG, and converted to PNG by CairoSVG.

    .venv/bin/aiops up
    .venv/bin/python hack/demo_screenshots.py [--name NAME] [--out docs/img]

Needs tmux (hack/setup.sh installs it) and CairoSVG (.venv/bin/pip install cairosvg).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

from rich.console import Console
from rich.text import Text

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 120, 40
SHOTS = {
    # file stem -> what the pane must show before it is captured
    "demo-detection": ("Chapter 5/10 · Detection", "DETECTED in"),
    "demo-summary": ("Chapter 10/10 · Summary", "TTR ", "load generator stopped"),
}
# Rich's SVG asks for Fira Code from the web; the converter has no network, so the text is
# set in a monospace font the machine has.
FONT = re.compile(r"@font-face\s*\{[^}]*\}", re.S)
DONE = re.compile(r"EXIT=\d+")  # the exit code, not the command line that prints it


def tmux(socket: str, *args: str) -> str:
    return subprocess.run(
        ["tmux", "-L", socket, *args], capture_output=True, text=True, check=True, timeout=30
    ).stdout


def capture(socket: str) -> str:
    return tmux(socket, "capture-pane", "-p", "-e", "-t", "shots")


def to_png(ansi: str, title: str, png: Path) -> None:
    import cairosvg

    console = Console(
        record=True,
        width=WIDTH,
        height=HEIGHT,
        color_system="truecolor",
        force_terminal=True,
        file=open("/dev/null", "w"),  # noqa: SIM115 - a sink for the recording console
    )
    lines = ansi.splitlines()[:HEIGHT]
    console.print(Text("\n").join(Text.from_ansi(line) for line in lines), end="")
    svg = FONT.sub("", console.export_svg(title=title))
    svg = svg.replace(
        "font-family: Fira Code, monospace", "font-family: DejaVu Sans Mono, monospace"
    )
    cairosvg.svg2png(bytestring=svg.encode(), write_to=str(png), output_width=WIDTH * 12)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default="aiops", help="the system `aiops up` started")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--timeout", type=float, default=240)
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        print("demo_screenshots: tmux is missing: apt-get install tmux", file=sys.stderr)
        return 2
    try:
        import cairosvg  # noqa: F401
    except ImportError:
        print(
            "demo_screenshots: CairoSVG is missing: .venv/bin/pip install cairosvg", file=sys.stderr
        )
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    socket = f"aiops-shots-{uuid.uuid4().hex[:8]}"
    command = (
        f"{sys.executable} -m aiops.cli.main demo ratelimiter --name {args.name} "
        "--auto --dwell 4; echo EXIT=$?"
    )
    tmux(
        socket,
        "new-session",
        "-d",
        "-s",
        "shots",
        "-x",
        str(WIDTH),
        "-y",
        str(HEIGHT),
        "bash --norc --noprofile",
    )
    try:
        tmux(socket, "set-option", "-g", "status", "off")
        tmux(socket, "resize-window", "-t", "shots", "-x", str(WIDTH), "-y", str(HEIGHT))
        tmux(socket, "send-keys", "-t", "shots", "-l", command)
        tmux(socket, "send-keys", "-t", "shots", "Enter")
        pending = dict(SHOTS)
        deadline = time.monotonic() + args.timeout
        while pending and time.monotonic() < deadline:
            screen = capture(socket)
            plain = Text.from_ansi(screen).plain
            for stem, needed in list(pending.items()):
                if all(n in plain for n in needed):
                    png = args.out / f"{stem}.png"
                    to_png(screen, f"aiops demo ratelimiter: {needed[0]}", png)
                    print(f"{png.relative_to(ROOT) if png.is_relative_to(ROOT) else png}")
                    del pending[stem]
            if DONE.search(plain) and pending:
                print(
                    f"demo_screenshots: the demo ended before {', '.join(pending)}:\n{plain}",
                    file=sys.stderr,
                )
                return 1
            time.sleep(0.3)
        if pending:
            print(f"demo_screenshots: timed out waiting for {', '.join(pending)}", file=sys.stderr)
            return 1
        # Let the demo finish its cleanup (the Chaos reverted, the load stopped).
        while (
            not DONE.search(Text.from_ansi(capture(socket)).plain) and time.monotonic() < deadline
        ):
            time.sleep(0.5)
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
