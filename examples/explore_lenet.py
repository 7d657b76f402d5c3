"""Write the explorer page of LeNet-5's training loss: open it in a browser to click through the graph
and step through the backward pass. The forward runs inside detect_anomaly(), so each op shows the
line below that made it.

    python examples/explore_lenet.py [out_dir] [--batch-size 8] [--screenshot PNG]

--screenshot also saves a picture of the page a few steps into the backward pass, taken with the
system's Chromium (/usr/bin/chromium) through Playwright's Python package; this made
docs/images/explorer_lenet.png.
"""
import argparse
import time
from pathlib import Path

import numpy as np

import tinygrad_cnn as tg
import tinygrad_cnn.functional as F
from tinygrad_cnn.models import LeNet5
from tinygrad_cnn.viz import explore
from tinygrad_cnn.viz.explorer import read_page_data

CHROMIUM = "/usr/bin/chromium"


def screenshot(page: Path, png: Path, steps: int = 12) -> None:
    """Open `page` in headless Chromium, select a convolution, run `steps` backward steps, save a PNG."""
    from playwright.sync_api import sync_playwright  # only for pictures

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        view = browser.new_page(viewport={"width": 1400, "height": 860})
        view.goto(page.resolve().as_uri())
        view.wait_for_selector("body[data-ready]")
        view.fill("#search", "conv2.weight")
        view.press("#search", "Enter")
        view.fill("#search", "")
        view.click("#fit")
        for _ in range(steps):
            view.click("#step")
        view.screenshot(path=str(png))
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", type=Path, default=Path("out"), help="where to write (default ./out)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--screenshot", type=Path, metavar="PNG", help="also save a picture of the page")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    tg.manual_seed(0)
    model = LeNet5()
    images, labels = tg.randn(args.batch_size, 1, 28, 28), tg.tensor(np.arange(args.batch_size) % 10)
    with tg.autograd.detect_anomaly():  # records the line of code that made each op
        loss = F.cross_entropy(model(images), labels)
    start = time.perf_counter()
    path = explore(loss, params=model, path=args.out_dir / "lenet5_explorer.html")
    seconds = time.perf_counter() - start
    data = read_page_data(path.read_text(encoding="utf-8"))
    print(f"wrote {path}: {len(data['nodes'])} nodes, {len(data['trace']['steps'])} backward steps, "
          f"{path.stat().st_size / 1024:.0f} KiB, made in {seconds:.2f} s")
    if args.screenshot:
        screenshot(path, args.screenshot)
        print(f"wrote {args.screenshot}")


if __name__ == "__main__":
    main()
