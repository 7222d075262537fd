"""The cubins a wheel ships (issue 20): built when the wheel was built, found here by their source's hash,
so that a user's first call of a shipped kernel loads it and never runs a compiler.

The store is `kernels/package/prebuilt/` of the installed package (absent in a source checkout, which
builds through kernels/build.py's cache): `index.json` maps the sha256 of each kernel source the driver
tried to its build report, and the cubin of the variant the driver chose lies beside it, named by its
own sha256. Variants the driver refused (spills, serialized wgmma) are kept as reports without a cubin,
so that choosing among them needs no compiler either. Every cubin's digest is checked when it is read.

    write(store, [(source, entry, report, ship_cubin), ...])   # kernels/package/bundle.py, building a wheel
    report(source)                                             # a BuildReport with prebuilt=True, or None
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from warpsched.kernels.toolchain import BuildError

if TYPE_CHECKING:
    from warpsched.kernels.build import BuildReport

FORMAT = "warpsched.prebuilt/1"
STORE = Path(__file__).resolve().parent / "package" / "prebuilt"
INDEX = "index.json"


def source_digest(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


def _records(store: Path) -> dict:
    path = store / INDEX
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise BuildError(f"the packaged cubin index {str(path)!r} is unreadable ({exc}); reinstall warpsched")
    if (
        not isinstance(data, dict)
        or data.get("format") != FORMAT
        or not isinstance(data.get("kernels"), dict)
    ):
        raise BuildError(
            f"{str(path)!r} is not a warpsched cubin index of format {FORMAT!r}; reinstall warpsched"
        )
    return data["kernels"]


def report(source: str, store: Path | None = None) -> "BuildReport | None":
    """The shipped build of `source`, its cubin's digest checked; None when the package ships none (a source
    checkout, or a kernel the package does not hold). A damaged cubin is a `BuildError`."""
    from warpsched.kernels.build import BuildReport

    store = Path(store or STORE)
    found = _records(store).get(source_digest(source))
    if found is None:
        return None
    cubin = found["cubin"]
    if cubin:
        path = store / cubin
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            raise BuildError(
                f"the packaged cubin {str(path)!r} is missing ({exc.strerror}); reinstall warpsched"
            )
        if digest != found["cubin_digest"]:
            raise BuildError(
                f"the packaged cubin {str(path)!r} is damaged (sha256 {digest[:16]}..., the index says "
                f"{found['cubin_digest'][:16]}...); reinstall warpsched"
            )
        cubin = str(path)
    fields = {k: v for k, v in found.items() if k not in ("cubin", "cubin_digest", "entry")}
    return BuildReport(
        **{
            **fields,
            "cubin": cubin,
            "sass_problems": tuple(fields["sass_problems"]),
            "cached": True,
            "prebuilt": True,
        }
    )


def write(store: Path, builds: Iterable[tuple[str, str, "BuildReport", bool]]) -> Path:
    """Fill `store` with `(source, entry, report, ship_cubin)` builds: every report in the index, the cubin
    only where `ship_cubin`. Deterministic: sorted keys, no timestamps. Returns the index's path."""
    store = Path(store)
    store.mkdir(parents=True, exist_ok=True)
    kernels = {}
    for source, entry, built, ship_cubin in builds:
        record = {k: v for k, v in asdict(built).items() if k not in ("cached", "prebuilt")}
        record["entry"] = entry
        record["sass_problems"] = list(built.sass_problems)
        record["cubin"], record["cubin_digest"] = "", ""
        if ship_cubin:
            data = Path(built.cubin).read_bytes()
            record["cubin_digest"] = hashlib.sha256(data).hexdigest()
            record["cubin"] = record["cubin_digest"][:24] + ".cubin"
            (store / record["cubin"]).write_bytes(data)
        key = source_digest(source)
        if key in kernels and kernels[key]["cubin"] and not record["cubin"]:
            continue  # a source both shipped and tried elsewhere: keep its cubin
        kernels[key] = record
    path = store / INDEX
    path.write_text(json.dumps({"format": FORMAT, "kernels": kernels}, indent=1, sort_keys=True) + "\n")
    return path


def shipped_cubins(store: Path | None = None) -> int:
    """How many cubins the store holds (0 in a source checkout)."""
    return sum(1 for record in _records(Path(store or STORE)).values() if record["cubin"])
