"""The PR comment as a reviewer sees it: Markdown -> HTML with GitHub-like CSS -> a PNG
from headless Chromium (Debian's `chromium`, installed by scripts/system-deps.sh).

The scenario is the issue's: the base exempts no namespace from `default-deny-all`, the
head exempts `shop` (a long selector that changes at its end), opens port 2222 next to
SSH in a host rule, and drops a legacy allow-all (a prune). The test checks the HTML holds
the changed text whole, and the PNG is a real page with green and red diff lines. The PNG
is kept in build/test-output/ (and the test's tmp dir) for a person to look at.
"""

from __future__ import annotations

import html
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from reconciler import pipeline
from reconciler.pipeline.review import offline_report
from reconciler.report.pr import render_report
from reconciler.report.publish import marker_for
from tests.report.test_pr import BASE_REV, EXAMPLE_REPO, HEAD_REV, example_base

CSS = Path(__file__).with_name("github.css")
OUTPUT = Path(__file__).parents[2] / "build" / "test-output"
DEFAULTS = Path("global") / "cluster-defaults.yaml"
FIREWALL = Path("hosts") / "node-firewall.yaml"
# default-deny-all's namespaceSelector (allow-ping-in-cluster repeats it: the name tells).
OLD_SELECTOR = (
    'name: default-deny-all\nspec:\n  namespaceSelector: "kubernetes.io/metadata.name not in '
    "{'kube-system', 'calico-system', 'calico-apiserver', 'tigera-operator', 'ingress-nginx', "
    "'cattle-system'}\""
)
NEW_SELECTOR = OLD_SELECTOR.replace("'cattle-system'}", "'cattle-system', 'shop'}")
SSH_PORT = "      destination:\n        ports:\n          - 22\n"


def scenario(tmp_path: Path) -> str:
    """The comment body for the issue's pull request, rendered offline."""
    base = example_base(tmp_path)
    head = tmp_path / "head"
    shutil.copytree(EXAMPLE_REPO, head)
    for path, old, new in (
        (DEFAULTS, OLD_SELECTOR, NEW_SELECTOR),
        (FIREWALL, SSH_PORT, SSH_PORT + "          - 2222\n"),
    ):
        text = (head / path).read_text()
        assert text.count(old) == 1, path
        (head / path).write_text(text.replace(old, new))
    settings = pipeline.Settings()
    report = offline_report(
        head=pipeline.render(head, HEAD_REV, settings),
        base=pipeline.render(base, BASE_REV, settings),
        settings=settings,
        base_ref="main",
    )
    run_url = "https://github.com/acme/firewall/actions/runs/42"
    return render_report(report, marker=marker_for("offline"), run_url=run_url)


def _highlight(code: str, lang: str, _attrs: str) -> str:
    """GitHub's `diff` colouring: a class per line by its first character."""
    if lang != "diff":
        return ""
    classes = {"+": "pl-mi1", "-": "pl-md", "@": "pl-mdr"}
    lines = [
        f'<span class="{classes[line[:1]]}">{html.escape(line)}</span>'
        if line[:1] in classes
        else html.escape(line)
        for line in code.rstrip("\n").split("\n")
    ]
    return "<pre><code>" + "\n".join(lines) + "</code></pre>"


def to_html(markdown: str) -> str:
    md = MarkdownIt("commonmark", {"html": True, "highlight": _highlight}).enable("table")
    body = md.render(markdown)
    # GitHub renders `> [!CAUTION]` as an alert; <details> are opened for the picture.
    body = body.replace(
        "<blockquote>\n<p>[!CAUTION]",
        '<blockquote class="markdown-alert">\n<p>'
        '<span class="markdown-alert-title">Caution</span><br>',
    ).replace("<details>", "<details open>")
    style = CSS.read_text()
    head = f"<meta charset='utf-8'><style>{style}</style>"
    return f"<!doctype html><html><head>{head}</head><body>{body}</body></html>"


def screenshot(page: Path, png: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("chromium is missing: run scripts/system-deps.sh (Debian's chromium package)")
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",  # root in a container has no user namespace sandbox
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={png.parent / 'chromium-profile'}",
            "--window-size=1000,2600",
            f"--screenshot={png}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
        env={**os.environ, "HOME": str(png.parent)},
    )


def test_the_pr_comment_renders_and_shows_every_change(tmp_path: Path) -> None:
    markdown = scenario(tmp_path / "repos")
    page = tmp_path / "comment.html"
    page.write_text(to_html(markdown), encoding="utf-8")
    text = page.read_text()
    # The change that matters is on the page, whole, and the objects are named unambiguously.
    assert (
        "&#x27;cattle-system&#x27;, &#x27;shop&#x27;}" in text or "'cattle-system', 'shop'}" in text
    )
    assert "- 2222" in text and "action: Allow" in text
    assert "NetworkPolicy.networking.k8s.io/shop/legacy-allow-all" in text
    assert "This pull request deletes 1 object from the cluster" in text
    assert "(+52 chars)" not in text and "…" not in text

    png = tmp_path / "comment.png"
    screenshot(page, png)
    width, height, pixels = read_png(png)
    assert (width, height) == (1000, 2600)
    count = width * height
    ink = sum(1 for p in pixels if p != (255, 255, 255))
    greens = sum(1 for r, g, b in pixels if (r, g, b) == (0xDA, 0xFB, 0xE1))  # + line background
    reds = sum(1 for r, g, b in pixels if (r, g, b) == (0xFF, 0xEB, 0xE9))  # - line background
    assert ink > count // 20, "the page is (nearly) blank"
    assert greens > 2000 and reds > 2000, (greens, reds)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    shutil.copy(png, OUTPUT / "pr-comment.png")
    shutil.copy(page, OUTPUT / "pr-comment.html")


# --- a PNG reader (8-bit RGB/RGBA, not interlaced: what Chromium writes) -----------------


def read_png(path: Path) -> tuple[int, int, list[tuple[int, int, int]]]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    at, idat, header = 8, b"", b""
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, chunk = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        header = chunk if kind == b"IHDR" else header
        idat += chunk if kind == b"IDAT" else b""
        at += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    channels = 3 if colour == 2 else 4
    rows = _unfilter(zlib.decompress(idat), width * channels, height, channels)
    pixels = [
        (row[i], row[i + 1], row[i + 2]) for row in rows for i in range(0, len(row), channels)
    ]
    return width, height, pixels


def _unfilter(raw: bytes, stride: int, height: int, bpp: int) -> list[bytes]:
    rows: list[bytes] = []
    prior = bytearray(stride)
    for y in range(height):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, corner = prior[i], prior[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + _predict(kind, left, up, corner)) & 0xFF
        rows.append(bytes(line))
        prior = line
    return rows


def _predict(kind: int, left: int, up: int, corner: int) -> int:
    if kind == 0:
        return 0
    if kind == 1:
        return left
    if kind == 2:
        return up
    if kind == 3:
        return (left + up) // 2
    estimate = left + up - corner
    distances = (abs(estimate - left), abs(estimate - up), abs(estimate - corner))
    return (left, up, corner)[distances.index(min(distances))]
