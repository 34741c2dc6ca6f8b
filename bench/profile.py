"""The gateway in one process under a profiler, until SIGTERM/SIGINT; then the report.

py-spy loses frames under uvloop (C callbacks), so this profiles in-process instead:
`python -m bench.profile --config FILE --out FILE [--profiler cprofile|pyinstrument]`.
`csr-gateway bench --profile OUT` runs it under the load of the first scenario.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import signal
from pathlib import Path
from typing import Any


async def serve(config: str, ready: Path) -> int:
    from gateway.app.server import start_gateway
    from gateway.config.load import load_settings
    from gateway.runtime.gateway import GATEWAY

    runner = await start_gateway(load_settings(config))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    ready.write_text("ready")
    await stop.wait()
    served = runner.app[GATEWAY].audit.seq
    await runner.cleanup()
    return served


def profiled(kind: str, config: str, ready: Path, out: Path) -> None:
    if kind == "pyinstrument":
        from pyinstrument import Profiler

        profiler: Any = Profiler(interval=0.0005, async_mode="disabled")
        profiler.start()
        asyncio.run(serve(config, ready))
        profiler.stop()
        out.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
        return
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    served = asyncio.run(serve(config, ready))
    prof.disable()
    text = io.StringIO()
    stats = pstats.Stats(prof, stream=text)
    text.write(f"audit lines written (about one per request): {served}\n")
    stats.sort_stats("tottime").print_stats(45)
    stats.sort_stats("cumulative").print_stats(70)
    out.write_text(text.getvalue())
    with contextlib.suppress(OSError):
        stats.dump_stats(str(out.with_suffix(".pstats")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--ready", required=True, help="file written once listening")
    parser.add_argument("--profiler", choices=("cprofile", "pyinstrument"), default="cprofile")
    args = parser.parse_args()
    from gateway.app.server import install_uvloop

    install_uvloop()
    profiled(args.profiler, args.config, Path(args.ready), Path(args.out))


if __name__ == "__main__":
    main()
