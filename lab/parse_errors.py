"""Parser errors as one line: jsonargparse's nested messages cut to their cause (the unknown key, the expected type,
the values a key takes, the classes a module offers for a ``class_path``)."""

from __future__ import annotations

import importlib
import inspect
import re

from pytorch_lightning.cli import LightningArgumentParser

from lab.errors import fail


class OneLineErrorParser(LightningArgumentParser):
    """A LightningArgumentParser whose parse errors are one line on stderr and exit status 2."""

    def error(self, message: str, ex: Exception | None = None):  # type: ignore[override]
        if not self.exit_on_error:
            return super().error(message, ex)
        fail(shorten_parser_message(message))


def shorten_parser_message(message: str) -> str:
    """One line from jsonargparse's nested messages: the unknown key or the expected type, with where it is."""
    text = str(message)
    missing_class = class_path_problem(text)
    if missing_class:
        return missing_class
    keys = re.findall(r'[Kk]ey "([^"]+)"', text)
    classes = re.findall(r"class_path '([^']+)'", text)
    unknown = re.findall(r"(?:Option|option) '([^']+)'(?: is not accepted)?", text)
    if unknown and ("not accepted" in text or "does not accept" in text):
        owner = classes[-1] if classes else (keys[0] if keys else "")
        return f'unknown key "{unknown[-1]}"' + (f" for {owner}" if owner else "") + " (check its spelling)"
    choices = re.findall(r"Expected a typing\.Literal\[([^\]]*)\]", text)
    given = re.search(r"(?:Given|Got) value: (.*)", text)
    if choices and given:  # a value outside a fixed set (e.g. trainer.precision): list the set, strings first
        options = [
            o.strip().strip("'") for group in sorted(choices, key=lambda c: "'" not in c) for o in group.split(",")
        ]
        key = keys[-1] if keys else "value"
        return f"{key} must be one of {', '.join(dict.fromkeys(options))}, got {given.group(1).strip()!r}"
    expected = [name for name in re.findall(r"Expected a <class '([^']+)'>", text) if name != "NoneType"]
    if expected:
        given = re.search(r"(?:Given|Got) value: (.*)", text)
        key = keys[-1] if keys else "value"
        return f'key "{key}": expected {expected[0]}' + (f", got {given.group(1).strip()!r}" if given else "")
    return " ".join(line.strip(" -") for line in text.splitlines() if line.strip(" -"))


def class_path_problem(text: str) -> str | None:
    """``<key>: <module> has no class <name>; it offers A, B`` (or ``no module named``) for a class_path that cannot
    be imported, else None."""
    bad = re.search(r"Problem with given class_path '([^']+)':\s*(?:module '[^']+' has no attribute|No module named)",
                    text)  # fmt: skip
    if not bad:
        return None
    path = bad.group(1)
    where = ".".join(re.findall(r'Parser key "([^"]+)"', text[: bad.start()])) or "class_path"
    module_name, _, name = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return f"{where}: class_path {path}: no module named {module_name}"
    mine = [obj for obj in vars(module).values() if inspect.isclass(obj) and obj.__module__ == module.__name__]
    offered = sorted(obj.__name__ for obj in mine if not obj.__name__.startswith("_"))
    return f"{where}: {module_name} has no class {name}" + (f"; it offers {', '.join(offered)}" if offered else "")
